// SPDX-License-Identifier: GPL-2.0
/*
 * central: one CPU makes every scheduling decision.
 *
 * Every runnable task joins one FIFO queue. Only the central CPU
 * (`central_cpu`) takes tasks from it: for itself, and for the other CPUs
 * ("workers"), whose local queues it fills. A worker never picks a task by
 * itself; it runs what it was given until the task blocks or the central CPU
 * takes the CPU back.
 *
 * Workers run with an infinite slice (SCX_SLICE_INF), so the scheduler tick
 * never preempts them (and on a nohz_full CPU the tick can stop). Time
 * slicing is the central CPU's job: on every one of its own ticks it checks
 * the workers, and when tasks are waiting and some worker is idle or has run
 * its task longer than `slice_ns`, it preempts itself to run a round in its
 * dispatch callback. A round gives each such worker the next waiting task
 * (with SCX_ENQ_PREEMPT for a busy one) and kicks it. A task queued while a
 * CPU idles, and a worker that runs out of work while tasks wait, kick the
 * central CPU at once.
 *
 * Why the tick and not a BPF timer: a bpf_timer lives only while user space
 * holds a reference to its map (or the map is pinned); our loader, bpftool,
 * exits right after attaching, and the kernel then cancels the timer.
 *
 * The central CPU also runs tasks, with a normal slice: on a small machine a
 * CPU reserved for scheduling would cost too much throughput. If it stops
 * answering (e.g. an RT task holds it), workers fall back to taking tasks
 * themselves 4 x slice_ns after a round was asked for, so nothing waits for
 * long.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define CENTRAL_DSQ	0	/* every waiting task, FIFO */
#define MAX_CPUS	512	/* CPUs this policy can drive */
#define LOCAL_DEPTH	2	/* tasks a worker may hold before it starts them */

/*
 * Tunables, set by userspace between open and load.
 *
 * central_cpu: the CPU that makes the decisions. Out of range: CPU 0.
 */
const volatile u32 central_cpu = 0;

/*
 * slice_ns: how long a task may run while others wait. Longer: fewer
 * switches and warmer caches; shorter: less waiting behind CPU hogs.
 */
const volatile u64 slice_ns = 20000000;	/* 20 ms */

/* Stats, read by userspace from .bss. */
u64 nr_enqueued;		/* tasks put on the central queue */
u64 nr_kthread_local;		/* per-CPU kernel threads run on their CPU */
u64 nr_rounds;			/* rounds of decisions by the central CPU */
u64 nr_assigned;		/* tasks the central CPU gave to a worker */
u64 nr_worker_preempted;	/* of those, replacing an overrunning task */
u64 nr_central_ran;		/* tasks the central CPU took for itself */
u64 nr_central_kicks;		/* kicks of the central CPU asking for a round */
u64 nr_fallback;		/* tasks a worker took itself: central CPU stalled */
u64 nr_sync_handoffs;		/* wakees run next on their waker's worker CPU */

static u32 central SCHEDCP_STATE;	/* central_cpu, checked at init */
static u32 nr_cpus SCHEDCP_STATE;	/* min(nr_cpu_ids, MAX_CPUS) */
/* When a round was first asked for since the last one; 0: none pending. */
static u64 round_wanted_ns SCHEDCP_STATE;

/* When the task now on each CPU started running; 0: none of ours. */
static u64 run_start[MAX_CPUS] SCHEDCP_STATE;
/*
 * When each worker's turn began: like run_start, except that a task handed
 * the CPU by a synchronous wakeup (see central_select_cpu) continues the
 * turn of the task that woke it. Slices are counted per turn, so a pair of
 * tasks waking each other cannot keep a worker from the queue.
 */
static u64 turn_start[MAX_CPUS] SCHEDCP_STATE;
/* A synchronous wakeup put a task on this worker's local queue. */
static bool handoff[MAX_CPUS] SCHEDCP_STATE;

/* Ask the central CPU for a round. */
static void kick_central(u64 flags)
{
	if (!round_wanted_ns)
		__sync_val_compare_and_swap(&round_wanted_ns, 0,
					    bpf_ktime_get_ns() | 1);
	scx_bpf_kick_cpu(central, flags);
	__sync_fetch_and_add(&nr_central_kicks, 1);
}

/* Asked for a round 4 slices ago and still waiting? */
static bool central_stalled(u64 now)
{
	u64 wanted = round_wanted_ns;

	return wanted && (s64)(now - wanted) > (s64)(4 * slice_ns);
}

SEC("struct_ops/central_select_cpu")
s32 BPF_PROG(central_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	s32 self = bpf_get_smp_processor_id();

	/*
	 * The one decision a worker makes itself: a synchronous wakeup (a
	 * pipe or socket partner; the waker is about to block) runs the wakee
	 * next on the waker's CPU, within the waker's turn. Through the
	 * central CPU every message of such a pair cost two IPIs and a wait
	 * behind the CPU hogs: stress-ng's switch stressor ran at 2% of its
	 * rate under EEVDF. Not on the central CPU, whose rounds run only
	 * when its local queue is empty, and only when nothing is queued
	 * there yet.
	 */
	if ((wake_flags & SCX_WAKE_SYNC) && (u32)self != central &&
	    (u32)self < MAX_CPUS && bpf_cpumask_test_cpu(self, p->cpus_ptr) &&
	    scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL) == 0) {
		handoff[self] = true;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_INF, 0);
		__sync_fetch_and_add(&nr_sync_handoffs, 1);
		return self;
	}
	/*
	 * Otherwise no decision here: the central CPU makes it. (Without this
	 * callback the kernel would put a waking task on an idle CPU itself.)
	 */
	return prev_cpu;
}

SEC("struct_ops/central_enqueue")
void BPF_PROG(central_enqueue, struct task_struct *p, u64 enq_flags)
{
	const struct cpumask *idle;
	bool some_idle;

	/*
	 * Per-CPU kernel threads can run nowhere else, and a worker may run a
	 * task for a long time: let them preempt it.
	 */
	if (schedcp_is_percpu_kthread(p)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns,
				   enq_flags | SCX_ENQ_PREEMPT);
		__sync_fetch_and_add(&nr_kthread_local, 1);
		return;
	}

	scx_bpf_dsq_insert(p, CENTRAL_DSQ, slice_ns, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);

	/* A CPU is idle: have the central CPU hand out the task now. */
	idle = scx_bpf_get_idle_cpumask();
	some_idle = !bpf_cpumask_empty(idle);
	scx_bpf_put_idle_cpumask(idle);
	if (some_idle)
		kick_central(SCX_KICK_PREEMPT);
}

/* Does worker @cpu need a task: idle, or running one past its slice? */
static bool worker_wants_task(u32 cpu, u64 now, bool *busy)
{
	u64 started;

	if (cpu >= MAX_CPUS)
		return false;
	started = run_start[cpu];
	*busy = started != 0;
	return !*busy || now - turn_start[cpu] >= slice_ns;
}

/* Give @cpu the first queued task allowed on it. */
static bool give_task(u32 cpu, u64 enq_flags)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	bool moved = false;

	/* The iterator visits only the tasks queued when it started. */
	bpf_iter_scx_dsq_new(&it, CENTRAL_DSQ, 0);
	while ((p = bpf_iter_scx_dsq_next(&it))) {
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		scx_bpf_dsq_move_set_slice(&it, SCX_SLICE_INF);
		moved = scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL_ON | cpu,
					 enq_flags);
		break;
	}
	bpf_iter_scx_dsq_destroy(&it);
	return moved;
}

/*
 * One round of decisions, on the central CPU: every worker that is idle, or
 * whose task has run longer than slice_ns, gets the next waiting task.
 */
static void assign_workers(u64 now)
{
	u32 cpu;

	bpf_for(cpu, 0, nr_cpus) {
		bool busy = false;

		if (cpu == central || !worker_wants_task(cpu, now, &busy))
			continue;
		/*
		 * Already holds LOCAL_DEPTH tasks it has not started (an idle
		 * CPU takes a while to wake up): enough. A busy one is past its
		 * slice: make it switch to them now.
		 */
		if (scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL_ON | cpu) >= LOCAL_DEPTH) {
			if (busy)
				scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
			continue;
		}
		if (scx_bpf_dsq_nr_queued(CENTRAL_DSQ) <= 0)
			break;
		if (!give_task(cpu, busy ? SCX_ENQ_PREEMPT : 0))
			continue;
		__sync_fetch_and_add(&nr_assigned, 1);
		if (busy)
			__sync_fetch_and_add(&nr_worker_preempted, 1);
		scx_bpf_kick_cpu(cpu, busy ? SCX_KICK_PREEMPT : SCX_KICK_IDLE);
	}
}

SEC("struct_ops/central_dispatch")
void BPF_PROG(central_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 now = bpf_ktime_get_ns();

	if ((u32)cpu != central) {
		/* A worker ran out of work. */
		if (scx_bpf_dsq_nr_queued(CENTRAL_DSQ) <= 0)
			return;
		if (central_stalled(now) &&
		    schedcp_move_to_local(CENTRAL_DSQ, &nr_fallback))
			return;
		kick_central(SCX_KICK_PREEMPT);	/* ask for more */
		return;
	}

	round_wanted_ns = 0;
	__sync_fetch_and_add(&nr_rounds, 1);
	assign_workers(now);
	schedcp_move_to_local(CENTRAL_DSQ, &nr_central_ran);
}

/*
 * The central CPU's tick is the policy's clock: when tasks wait and some
 * worker wants one, preempt ourselves so that dispatch runs a round. A
 * worker's tick only checks that the central CPU is alive.
 */
SEC("struct_ops/central_tick")
void BPF_PROG(central_tick, struct task_struct *p)
{
	u32 self = bpf_get_smp_processor_id();
	u64 now = bpf_ktime_get_ns();
	u32 cpu;

	if (scx_bpf_dsq_nr_queued(CENTRAL_DSQ) <= 0)
		return;

	if (self != central) {
		if (central < MAX_CPUS && !run_start[central])
			kick_central(SCX_KICK_IDLE);	/* idle with work queued */
		if (central_stalled(now))
			scx_bpf_kick_cpu(self, SCX_KICK_PREEMPT);	/* fall back */
		return;
	}

	bpf_for(cpu, 0, nr_cpus) {
		bool busy;

		if (cpu != central && worker_wants_task(cpu, now, &busy)) {
			kick_central(SCX_KICK_PREEMPT);
			return;
		}
	}
}

SEC("struct_ops/central_running")
void BPF_PROG(central_running, struct task_struct *p)
{
	u32 cpu = scx_bpf_task_cpu(p);
	u64 now = bpf_ktime_get_ns() | 1;	/* never 0 */

	if (cpu >= MAX_CPUS)
		return;
	run_start[cpu] = now;
	/* A handed-off wakee continues its waker's turn. */
	if (!handoff[cpu] || !turn_start[cpu])
		turn_start[cpu] = now;
	handoff[cpu] = false;
}

SEC("struct_ops/central_stopping")
void BPF_PROG(central_stopping, struct task_struct *p, bool runnable)
{
	u32 cpu = scx_bpf_task_cpu(p);

	if (cpu < MAX_CPUS)
		run_start[cpu] = 0;
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/central_init")
s32 BPF_PROG(central_init)
{
	nr_cpus = schedcp_nr_cpus(MAX_CPUS);
	central = central_cpu < nr_cpus ? central_cpu : 0;
	return schedcp_create_dsq(CENTRAL_DSQ);
}

SEC("struct_ops/central_exit")
void BPF_PROG(central_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops central_ops = {
	.select_cpu	= (void *)central_select_cpu,
	.enqueue	= (void *)central_enqueue,
	.dispatch	= (void *)central_dispatch,
	.tick		= (void *)central_tick,
	.running	= (void *)central_running,
	.stopping	= (void *)central_stopping,
	.init		= (void *)central_init,
	.exit		= (void *)central_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "central",
};
