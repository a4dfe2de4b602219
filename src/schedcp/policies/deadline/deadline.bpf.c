// SPDX-License-Identifier: GPL-2.0
/*
 * deadline: earliest deadline first (EDF) for periodic, soft real-time tasks.
 *
 * Every time a task wakes up it starts a new job, whose absolute deadline is
 * the wakeup time plus a relative deadline. A "periodic" task (it sleeps
 * less than `default_deadline_ns` between jobs) gets its period; everything
 * else is "batch" work and gets the default. The period is estimated by how
 * long the task sleeps between jobs (an average): for a periodic task, its
 * period minus its run time. Unlike the time between wakeups, our own delays cannot inflate it (a
 * late periodic task sleeps less, not more), so a task once delayed keeps its
 * short deadline.
 *
 * One shared DSQ ordered by absolute deadline (the vtime). A waking periodic
 * job that finds no idle CPU preempts a CPU running batch work or a later
 * deadline (its own CPU if that qualifies: no IPI). A job not done by its
 * deadline is demoted to batch with the deadline now + default_deadline_ns.
 *
 * One exception to EDF order: a batch job already past its deadline yields
 * to on-time jobs, for at most default_deadline_ns. In an overloaded machine
 * CPU hogs wait until their deadlines have passed, and plain EDF would then
 * run them before a periodic job that can still be on time; the hog is late
 * anyway. Otherwise EDF order keeps every wait bounded: a job is passed only
 * by jobs with earlier deadlines, and every deadline lies at most
 * default_deadline_ns ahead, so nothing waits much longer than two default
 * deadlines plus the jobs ahead of it, far below the watchdog's 5 s.
 *
 * A periodic job that completes (its task sleeps) after its deadline is a
 * miss.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define EDF_DSQ		0	/* every waiting job, by absolute deadline */
#define MAX_CPUS	512	/* CPUs this policy tracks for preemption */
#define BATCH_BIAS	(1ULL << 62)	/* batch work ranks after all periodic */
#define MIN_TURN_DIV	4	/* a late batch job's turn: a quarter slice */

/*
 * Tunables, set by userspace between open and load.
 *
 * slice_ns: the longest a task runs before the queue gets a look. A task
 * whose slice ends keeps its CPU while nothing more urgent waits.
 */
const volatile u64 slice_ns = 20000000;	/* 20 ms */

/*
 * default_deadline_ns: the relative deadline of a task with no shorter
 * period, and of a demoted job. Tasks with a shorter period are "periodic".
 * Also bounds how long any job waits: keep it far below the 5 s watchdog
 * timeout.
 */
const volatile u64 default_deadline_ns = 20000000;	/* 20 ms */

/*
 * min_deadline_ns: the shortest relative deadline a learned period can give.
 * A task that sleeps only microseconds between bursts (messaging, pipes)
 * would otherwise get deadlines it overruns at once, and thrash between
 * periodic and batch.
 */
const volatile u64 min_deadline_ns = 500000;	/* 500 us */

/*
 * use_period: learn each task's period (average sleep between its jobs) and
 * use it as its relative deadline when shorter than the default. Off: every
 * job gets default_deadline_ns, so all work is batch work in wakeup order.
 */
const volatile bool use_period = true;

/*
 * preempt: a waking periodic job preempts a CPU running batch work or a
 * later deadline. Off: it waits for a CPU to free up (at most slice_ns).
 */
const volatile bool preempt = true;

/* Stats, read by userspace from .bss. */
u64 nr_periodic;		/* jobs queued as periodic */
u64 nr_batch;			/* jobs queued as batch */
u64 nr_direct_dispatched;	/* wakeups sent straight to an idle CPU */
u64 nr_preemptions;		/* running tasks preempted for a waking job */
u64 nr_idle_kicks;		/* idle CPUs woken for a queued job */
u64 nr_late_passed;		/* late batch jobs passed for an on-time job */
u64 nr_jobs;			/* completed jobs (task went to sleep) */
u64 nr_deadline_misses;		/* periodic jobs completed after their deadline */
u64 max_lateness_ns;		/* worst completion past a deadline */
u64 nr_overruns;		/* periodic jobs demoted: not done by their deadline */

struct dl_task {
	u64 slept_at;	/* when the last job completed (the task slept) */
	u64 period;	/* average sleep between jobs; 0: unknown */
	u64 rel;	/* relative deadline; == default_deadline_ns: batch */
	u64 deadline;	/* absolute deadline used for scheduling */
	u64 due;	/* the job's original deadline, for misses */
	u64 job_rt;	/* the task's CPU time (sum_exec_runtime) when the job began */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dl_task);
} task_ctx SEC(".maps");

static u32 nr_cpus SCHEDCP_STATE;	/* min(nr_cpu_ids, MAX_CPUS) */

/* What each CPU runs, for choosing whom to preempt. */
struct cpu_state {
	u64 rank;	/* its task's deadline, + BATCH_BIAS for batch work; 0: none */
};

static struct cpu_state cpus[MAX_CPUS] SCHEDCP_STATE;

/* A periodic job was queued without a CPU to preempt (all were switching). */
static u64 periodic_unserved SCHEDCP_STATE;

static bool is_batch(struct dl_task *tctx)
{
	return tctx->rel >= default_deadline_ns;
}

static u64 rank_of(struct dl_task *tctx)
{
	return (tctx->deadline | 1) + (is_batch(tctx) ? BATCH_BIAS : 0);
}

static void new_job(struct dl_task *tctx, struct task_struct *p, u64 now,
		    u64 rel)
{
	tctx->job_rt = p->se.sum_exec_runtime;
	tctx->rel = rel;
	tctx->deadline = now + rel;
	/* Only periodic jobs have a deadline worth counting misses against. */
	tctx->due = rel < default_deadline_ns ? tctx->deadline : 0;
}

/*
 * A job not done by its deadline becomes (or stays) a batch job with a new
 * deadline: now + default_deadline_ns.
 *
 * Except a periodic job that is late only because it waited: one that has
 * used less CPU than its relative deadline keeps its (now past, so earliest)
 * deadline. Demoting it would punish the task for our own delay and put it
 * behind batch work just when it is already late: under emulation, where a
 * wakeup often waits out a CPU hog's slice before the preemption lands,
 * that turned 10 ms latency peaks into 50 ms ones. A task that really runs
 * longer than its deadline per job (a hog that looked periodic) is still
 * demoted, after that much CPU, so the CPU it takes first stays bounded.
 *
 * Likewise a late batch job gets its new deadline only after a real turn on
 * a CPU (min_turn() of CPU since its deadline was set). Renewing it the
 * moment it starts running let a waking periodic job preempt it microseconds
 * later and send it to the back of the queue with a fresh deadline: under a
 * steady stream of wakeups a nice-19 or SCHED_IDLE task got microseconds per
 * 40 ms and went 14 s without finishing a millisecond of work. Keeping its
 * old deadline until it has had its turn leaves it at the head of the queue,
 * where the starvation guard runs it again at the next dispatch.
 */
static u64 min_turn(void)
{
	u64 shortest = slice_ns < default_deadline_ns ? slice_ns
						      : default_deadline_ns;

	return shortest / MIN_TURN_DIV;
}

static void check_overrun(struct dl_task *tctx, struct task_struct *p, u64 now)
{
	u64 used = p->se.sum_exec_runtime - tctx->job_rt;

	if ((s64)(now - tctx->deadline) < 0)
		return;
	if (!is_batch(tctx) && used < tctx->rel)
		return;
	if (is_batch(tctx) && used < min_turn())
		return;
	if (!is_batch(tctx))
		__sync_fetch_and_add(&nr_overruns, 1);
	tctx->rel = default_deadline_ns;
	tctx->deadline = now + default_deadline_ns;
	tctx->job_rt = p->se.sum_exec_runtime;
}

SEC("struct_ops/deadline_select_cpu")
s32 BPF_PROG(deadline_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, true, slice_ns,
				       &nr_direct_dispatched);
}

/* A task became runnable: on a wakeup, a new job with a new deadline. */
SEC("struct_ops/deadline_runnable")
void BPF_PROG(deadline_runnable, struct task_struct *p, u64 enq_flags)
{
	struct dl_task *tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	u64 now = bpf_ktime_get_ns();
	u64 gap, period, rel = default_deadline_ns;

	if (!tctx)
		return;
	if (!(enq_flags & SCX_ENQ_WAKEUP)) {
		/* A new task, or one moved to sched_ext: a batch job. */
		if (!tctx->deadline)
			new_job(tctx, p, now, default_deadline_ns);
		return;
	}
	gap = default_deadline_ns;
	if (tctx->slept_at) {
		gap = now - tctx->slept_at;
		/* A long sleep is not a period: it counts as the default. */
		if (gap > default_deadline_ns)
			gap = default_deadline_ns;
		tctx->period = tctx->period ?
			tctx->period - (tctx->period >> 2) + (gap >> 2) : gap;
	}
	/*
	 * Periodic: a short sleep between jobs, on average or this time,
	 * whichever is shorter, so that a task whose first sleep was long
	 * counts at once.
	 */
	period = tctx->period < gap ? tctx->period : gap;
	if (use_period && period && period < rel)
		rel = period > min_deadline_ns ? period : min_deadline_ns;
	new_job(tctx, p, now, rel);
}

/*
 * A CPU to preempt for a periodic job with rank @rank: one running a higher
 * rank (batch work, or a later deadline); this CPU when it qualifies (a
 * timer wakeup lands on the CPU the task slept on, and preempting it needs
 * no IPI), else the highest rank; -1 if none. If one of the CPUs the job may
 * use is idle, wakes that one instead and returns -1.
 */
static s32 pick_victim(struct task_struct *p, u64 rank)
{
	u32 self = bpf_get_smp_processor_id();
	const struct cpumask *idle;
	s32 victim = -1, idle_cpu = -1;
	u64 highest = rank;
	u32 cpu;

	if (self < MAX_CPUS && bpf_cpumask_test_cpu(self, p->cpus_ptr) &&
	    cpus[self].rank && (s64)(cpus[self].rank - rank) > 0)
		return self;

	idle = scx_bpf_get_idle_cpumask();
	bpf_for(cpu, 0, nr_cpus) {
		u64 cur;

		if (cpu >= MAX_CPUS)
			break;
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (bpf_cpumask_test_cpu(cpu, idle)) {
			idle_cpu = cpu;
			break;
		}
		cur = cpus[cpu].rank;	/* 0: switching tasks right now */
		if (cur && (s64)(cur - highest) > 0) {
			highest = cur;
			victim = cpu;
		}
	}
	scx_bpf_put_idle_cpumask(idle);

	if (idle_cpu >= 0) {
		scx_bpf_kick_cpu(idle_cpu, SCX_KICK_IDLE);
		__sync_fetch_and_add(&nr_idle_kicks, 1);
		return -1;
	}
	return victim;
}

/*
 * May a waking periodic job with deadline @dl go straight onto a victim CPU,
 * bypassing the queue? Yes when nothing queued should go first: the head's
 * deadline is later, or the head is late but not starving (dispatch passes
 * late batch jobs over too). Never while the head starves: a CPU whose
 * local DSQ is always fed never calls dispatch, which serves starving jobs.
 */
static bool may_bypass_queue(u64 now, u64 dl)
{
	struct task_struct *head = scx_bpf_dsq_peek(EDF_DSQ);
	s64 head_late;

	if (!head)
		return true;
	head_late = now - head->scx.dsq_vtime;
	if (head_late > (s64)default_deadline_ns)
		return false;
	return head_late >= 0 || (s64)(dl - head->scx.dsq_vtime) < 0;
}

SEC("struct_ops/deadline_enqueue")
void BPF_PROG(deadline_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct dl_task *tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	u64 now = bpf_ktime_get_ns();
	s32 victim = -1;
	u64 dl;

	if (!tctx) {
		scx_bpf_dsq_insert_vtime(p, EDF_DSQ, slice_ns,
					 now + default_deadline_ns, enq_flags);
		return;
	}
	/* Back from a slice end or a preemption: same job, same deadline. */
	if (!(enq_flags & SCX_ENQ_WAKEUP))
		check_overrun(tctx, p, now);
	dl = tctx->deadline;
	if (is_batch(tctx))
		__sync_fetch_and_add(&nr_batch, 1);
	else
		__sync_fetch_and_add(&nr_periodic, 1);

	if (!is_batch(tctx) && preempt && (enq_flags & SCX_ENQ_WAKEUP))
		victim = pick_victim(p, rank_of(tctx));
	if (victim < 0 || victim >= MAX_CPUS) {
		scx_bpf_dsq_insert_vtime(p, EDF_DSQ, slice_ns, dl, enq_flags);
		if (!is_batch(tctx) && preempt && (enq_flags & SCX_ENQ_WAKEUP))
			periodic_unserved = 1;
		return;
	}

	/* Claim the victim, so that other wakeups pick another one. */
	cpus[victim].rank = rank_of(tctx);
	__sync_fetch_and_add(&nr_preemptions, 1);
	if (may_bypass_queue(now, dl)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | victim, slice_ns,
				   enq_flags | SCX_ENQ_PREEMPT);
		return;
	}
	/* Through the queue: the victim's dispatch takes the most urgent job. */
	scx_bpf_dsq_insert_vtime(p, EDF_DSQ, slice_ns, dl, enq_flags);
	scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
}

/*
 * Give this CPU the first job in EDF order, passing over batch jobs that are
 * past their deadline by less than default_deadline_ns (they have missed it
 * anyway; an on-time job has not). Keeps @prev, whose slice ended, when no
 * job found should go before it. Returns false if nothing was found.
 *
 * A batch job late by more than that goes first (the starvation guard). A
 * periodic job queued behind it, possibly the one a waking CPU kicked us
 * for, then needs another CPU: *@victim is set to the CPU to kick, or -1.
 */
static bool dispatch_edf(s32 cpu, u64 now, struct task_struct *prev,
			 struct dl_task *prev_ctx, s32 *victim)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	struct dl_task *tctx;
	bool moved = false, passed = false;

	/* The iterator visits only the jobs queued when it started. */
	bpf_iter_scx_dsq_new(&it, EDF_DSQ, 0);
	while ((p = bpf_iter_scx_dsq_next(&it))) {
		u64 dl = p->scx.dsq_vtime;
		s64 late = now - dl;

		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
		if (moved) {
			/* Took a starving batch job: is a periodic one behind? */
			if (tctx && !is_batch(tctx)) {
				*victim = pick_victim(p, rank_of(tctx));
				break;
			}
			continue;
		}
		if (late >= 0 && late <= (s64)default_deadline_ns &&
		    tctx && is_batch(tctx)) {
			passed = true;
			continue;
		}
		if (prev_ctx && (s64)(prev_ctx->deadline - dl) <= 0)
			break;		/* prev's deadline comes first */
		moved = scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL, 0);
		if (!moved || late <= (s64)default_deadline_ns)
			break;
	}
	bpf_iter_scx_dsq_destroy(&it);

	if (moved) {
		if (passed)
			__sync_fetch_and_add(&nr_late_passed, 1);
		return true;
	}
	if (!prev_ctx)
		return false;
	/*
	 * prev goes on: its deadline is first, or only late batch jobs are
	 * queued (prev is on time: check_overrun() ran). running is not
	 * called again for it, so publish its rank (it may have been
	 * demoted) for the preemption choice.
	 */
	scx_bpf_task_set_slice(prev, slice_ns);
	if (cpu >= 0 && cpu < MAX_CPUS)
		cpus[cpu].rank = rank_of(prev_ctx);
	return true;
}

SEC("struct_ops/deadline_dispatch")
void BPF_PROG(deadline_dispatch, s32 cpu, struct task_struct *prev)
{
	struct dl_task *prev_ctx = NULL;
	u64 now = bpf_ktime_get_ns();
	s32 victim = -1;

	/*
	 * prev's slice ended but it is not back on the queue yet (the kernel
	 * enqueues it after this call): it may keep the CPU.
	 */
	if (schedcp_prev_runnable(prev) &&
	    bpf_ksym_exists(scx_bpf_task_set_slice)) {
		prev_ctx = bpf_task_storage_get(&task_ctx, prev, 0, 0);
		if (prev_ctx)
			check_overrun(prev_ctx, prev, now);
	}
	/* This CPU is switching: not a victim (pick_victim skips rank 0). */
	if (cpu >= 0 && cpu < MAX_CPUS)
		cpus[cpu].rank = 0;
	if (!dispatch_edf(cpu, now, prev, prev_ctx, &victim)) {
		scx_bpf_dsq_move_to_local(EDF_DSQ);	/* only late jobs left */
		return;
	}
	if (preempt && victim >= 0 && victim < MAX_CPUS && victim != cpu) {
		scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
		__sync_fetch_and_add(&nr_preemptions, 1);
	}
}

SEC("struct_ops/deadline_running")
void BPF_PROG(deadline_running, struct task_struct *p)
{
	struct dl_task *tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	u32 cpu = scx_bpf_task_cpu(p);
	u64 now = bpf_ktime_get_ns();
	u64 rank = BATCH_BIAS;

	if (tctx) {
		/*
		 * A job that starts after its deadline (it waited behind
		 * others) is demoted now, so that it runs with the rank it
		 * goes back to the queue with.
		 */
		check_overrun(tctx, p, now);
		rank = rank_of(tctx);
	}
	if (cpu < MAX_CPUS)
		cpus[cpu].rank = rank;

	/*
	 * A periodic job queued while every CPU was switching tasks found no
	 * victim. If this CPU just switched to batch work, it chose before
	 * that job arrived: reschedule, so that the job goes first.
	 */
	if (periodic_unserved) {
		periodic_unserved = 0;
		if (rank >= BATCH_BIAS)
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
	}
}

SEC("struct_ops/deadline_stopping")
void BPF_PROG(deadline_stopping, struct task_struct *p, bool runnable)
{
	struct dl_task *tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	u32 cpu = scx_bpf_task_cpu(p);
	u64 now = bpf_ktime_get_ns();
	u64 late;

	if (cpu < MAX_CPUS)
		cpus[cpu].rank = 0;
	if (!tctx || runnable)
		return;		/* preempted or slice ended: same job */

	/* The task sleeps: its job is complete. */
	__sync_fetch_and_add(&nr_jobs, 1);
	tctx->slept_at = now;
	late = now - tctx->due;
	if (tctx->due && (s64)late > 0) {
		__sync_fetch_and_add(&nr_deadline_misses, 1);
		if (late > max_lateness_ns)
			max_lateness_ns = late;	/* racy max: good enough */
	}
}

SEC("struct_ops/deadline_init_task")
s32 BPF_PROG(deadline_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&task_ctx, p);
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/deadline_init")
s32 BPF_PROG(deadline_init)
{
	nr_cpus = schedcp_nr_cpus(MAX_CPUS);
	return schedcp_create_dsq(EDF_DSQ);
}

SEC("struct_ops/deadline_exit")
void BPF_PROG(deadline_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops deadline_ops = {
	.select_cpu	= (void *)deadline_select_cpu,
	.runnable	= (void *)deadline_runnable,
	.enqueue	= (void *)deadline_enqueue,
	.dispatch	= (void *)deadline_dispatch,
	.running	= (void *)deadline_running,
	.stopping	= (void *)deadline_stopping,
	.init_task	= (void *)deadline_init_task,
	.init		= (void *)deadline_init,
	.exit		= (void *)deadline_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "deadline",
};
