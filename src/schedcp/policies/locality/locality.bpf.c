// SPDX-License-Identifier: GPL-2.0
/*
 * locality: one queue per CPU; a task goes back to the CPU it last ran on.
 *
 * Each CPU has its own DSQ (DSQ id = CPU id). A task that becomes runnable
 * joins the queue of the CPU it last ran on, whose caches probably still hold
 * its data, unless a waking task finds its previous CPU or another one idle,
 * in which case it starts there at once. A CPU runs its own queue first. It
 * takes work from another CPU's queue only to even out load: when its own
 * queue is empty, or when the longest other queue holds at least
 * steal_margin more tasks than this CPU has.
 *
 * Within a CPU's queue tasks are ordered by weighted virtual time, as in the
 * vtime policy but with one clock per CPU: running for d ns advances a task's
 * vtime by d * 100 / weight (nice), and a woken sleeper is placed at most one
 * slice behind its CPU's clock. So nice works among the tasks of a CPU (the
 * balancing counts tasks, not weights), and a task that mostly sleeps
 * (a pipe or socket partner) runs before the CPU hogs queued on its CPU
 * instead of waiting behind all of them. With wake_preempt it does not even
 * wait for the running task's slice to end when that task is well ahead of
 * it in virtual time (a CPU hog): the CPU is kicked to switch at once.
 *
 * The kernel asks for the next task (ops.dispatch) before it puts the
 * running one back in its queue; at a slice end the running task keeps the
 * CPU while its virtual time, counting the run just done, is still before
 * the head of the CPU's queue. Otherwise the weights would not count when
 * few tasks wait.
 *
 * A task queued behind others while some CPU is idle wakes that CPU, which
 * then steals it: the policy stays work-conserving.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

/* CPUs supported (per-CPU clocks live in an array of this size). */
#define MAX_CPUS	1024

/* How far ahead of its CPU's clock a task may be placed, in slices. */
#define MAX_LEAD_SLICES	20

/* A wakeup preempts a task only after it ran a slice / MIN_TURN_DIV. */
#define MIN_TURN_DIV	4

/*
 * Tunables, set by userspace between open and load.
 *
 * slice_ns: how long a task runs before the next task on the same CPU, and
 * the credit a woken sleeper keeps. Long slices keep caches warm and cut
 * context switches; short ones cut how long tasks wait behind CPU hogs.
 */
const volatile u64 slice_ns = 10000000;	/* 10 ms */

/*
 * steal_margin: a busy CPU takes a task from another CPU's queue when that
 * queue holds at least this many more tasks than this CPU has (its queue plus
 * the task it is running). 1 balances load as evenly as per-CPU queues can,
 * at the cost of some migrations; larger values keep tasks where they are
 * (more cache warmth) and tolerate more imbalance. An idle CPU with an empty
 * queue steals whatever the margin.
 */
const volatile u32 steal_margin = 1;

/*
 * wake_idle: a waking task whose previous CPU is busy starts on another idle
 * CPU at once, rather than waiting in its previous CPU's queue. On: lower
 * wakeup latency; off: a task returns to its cache even if it has to wait
 * (idle CPUs still steal it when they find nothing else).
 */
const volatile bool wake_idle = true;

/*
 * wake_preempt: a woken task queued on a busy CPU preempts the task running
 * there when that task is at least half a slice ahead of it in virtual time
 * (in practice: a sleeper preempts a CPU hog, never another sleeper) and has
 * run a quarter of a slice in this turn. On:
 * ping-pong and request/response tasks beside CPU hogs run at once; off:
 * they wait up to slice_ns, and the hogs switch less.
 */
const volatile bool wake_preempt = true;

/* Stats, read by userspace from .bss. */
u64 nr_enqueued;	/* tasks put on a CPU's queue */
u64 nr_direct_prev;	/* waking tasks started at once on their idle previous CPU */
u64 nr_direct_other;	/* waking tasks started at once on another idle CPU */
u64 nr_local;		/* tasks a CPU took from its own queue */
u64 nr_stolen;		/* tasks a CPU took from another CPU's queue */
u64 nr_kicks;		/* idle CPUs woken to steal a queued task */
u64 nr_wake_preempts;	/* busy CPUs preempted for a woken task */
u64 nr_kept;		/* slice ends where the running task stayed ahead */

static u32 nr_cpus SCHEDCP_STATE;	/* scx_bpf_nr_cpu_ids(), set in init */

/* Per CPU: its clock, and the task running there. */
struct loc_cpu {
	u64 vtime_now;		/* vtime of the most advanced task run here */
	u64 curr_vtime;		/* vtime of the running task when it started */
	u64 curr_start_ns;	/* when the running task's turn began */
	bool busy;		/* one of our tasks is running */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct loc_cpu);
} loc_cpus SEC(".maps");

/* Per task: where its current run started, in CPU time. */
struct loc_task {
	u64 run_start;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct loc_task);
} loc_tasks SEC(".maps");

static __always_inline struct loc_cpu *cpu_state(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&loc_cpus, &key);
}

/* @p's key in the queue of @cpu: its vtime, within a window of the clock. */
static __always_inline u64 queue_key(struct task_struct *p, s32 cpu)
{
	struct loc_cpu *c = cpu_state(cpu);

	if (!c)
		return p->scx.dsq_vtime;
	/* One CPU serves this queue (others steal from it only when idle or short). */
	return schedcp_vtime_clamp(p->scx.dsq_vtime, c->vtime_now, slice_ns,
				   schedcp_max_lead(slice_ns, MAX_LEAD_SLICES,
						    scx_bpf_dsq_nr_queued(cpu), 1),
				   NULL, NULL);
}

/* The CPU whose queue @p joins: the one it is on, if @p may run there. */
static __always_inline s32 home_cpu(struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);

	if (bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		return cpu;
	/* Mid affinity change: any CPU it is now allowed on. */
	return scx_bpf_pick_any_cpu(p->cpus_ptr, 0);
}

SEC("struct_ops/locality_select_cpu")
s32 BPF_PROG(locality_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	/* Best case: the previous CPU, caches and all, is free. */
	if (bpf_cpumask_test_cpu(prev_cpu, p->cpus_ptr) &&
	    scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		schedcp_insert_local(p, slice_ns, &nr_direct_prev);
		return prev_cpu;
	}
	if (!wake_idle)
		return prev_cpu;

	/* Otherwise an idle CPU, preferring ones that share a cache with it. */
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, true, slice_ns,
				       &nr_direct_other);
}

SEC("struct_ops/locality_enqueue")
void BPF_PROG(locality_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct loc_cpu *c;
	s32 cpu;
	u64 key;

	cpu = home_cpu(p);
	if (cpu < 0 || (u32)cpu >= nr_cpus) {
		scx_error("locality: no queue for CPU %d of task %d", cpu,
			  p->pid);
		return;
	}
	key = queue_key(p, cpu);
	scx_bpf_dsq_insert_vtime(p, cpu, slice_ns, key, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);

	/*
	 * A woken sleeper behind a CPU hog: switch now, not at slice end. But
	 * not before the running task has had MIN_TURN_DIV-th of a slice: a
	 * light task (nice 19, SCHED_IDLE) is always far ahead in vtime, and
	 * preempted by every wakeup it ran for microseconds at a time, made no
	 * progress for 27 s and, caught inside an RCU read-side section, got
	 * the policy ejected for an RCU stall (the watchdog saw it run).
	 */
	c = cpu_state(cpu);
	if (wake_preempt && (enq_flags & SCX_ENQ_WAKEUP) && c && c->busy &&
	    schedcp_time_before(key + slice_ns / 2, c->curr_vtime) &&
	    bpf_ktime_get_ns() - c->curr_start_ns >= slice_ns / MIN_TURN_DIV) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		__sync_fetch_and_add(&nr_wake_preempts, 1);
		return;
	}

	/*
	 * If the home CPU is idle, wake it. Otherwise @p waits in line: wake
	 * some idle CPU, if there is one, to come and steal it.
	 */
	if (scx_bpf_test_and_clear_cpu_idle(cpu)) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	schedcp_kick_idle(p, &nr_kicks);
}

/* The CPU other than @self with the longest queue, or -1 if all are empty. */
static __always_inline s32 longest_queue(s32 self, s32 *len)
{
	s32 best = -1, best_len = 0, n;
	u32 i;

	bpf_for(i, 0, nr_cpus) {
		if ((s32)i == self)
			continue;
		n = scx_bpf_dsq_nr_queued(i);
		if (n > best_len) {
			best = i;
			best_len = n;
		}
	}
	*len = best_len;
	return best;
}

/* Is @prev, whose slice ended, still behind the head of @cpu's queue? */
static __always_inline bool keep_prev(struct task_struct *prev, s32 cpu)
{
	struct loc_task *tctx;
	u64 head_vtime;

	if (!schedcp_dsq_head_vtime(cpu, &head_vtime))
		return false;
	tctx = bpf_task_storage_get(&loc_tasks, prev, 0, 0);
	if (!tctx)
		return false;
	return schedcp_time_before(prev->scx.dsq_vtime +
				   schedcp_task_vtime_since(prev, tctx->run_start),
				   head_vtime);
}

SEC("struct_ops/locality_dispatch")
void BPF_PROG(locality_dispatch, s32 cpu, struct task_struct *prev)
{
	bool prev_runnable = schedcp_prev_runnable(prev);
	s32 own, mine, victim, victim_len = 0;

	own = scx_bpf_dsq_nr_queued(cpu);
	/* This CPU's load: its queue plus @prev if @prev wants to go on. */
	mine = own;
	if (prev_runnable)
		mine++;

	victim = longest_queue(cpu, &victim_len);
	if (victim >= 0 &&
	    ((mine == 0 && victim_len > 0) ||
	     victim_len >= mine + (s32)steal_margin) &&
	    schedcp_move_to_local(victim, &nr_stolen))
		return;
	if (prev_runnable && own > 0 && keep_prev(prev, cpu)) {
		schedcp_keep_running(prev, slice_ns, &nr_kept);
		return;
	}
	if (own > 0 && schedcp_move_to_local(cpu, &nr_local))
		return;
	/*
	 * Nothing taken (own queue empty): @prev, if runnable, keeps the CPU.
	 * Give it our slice, not the kernel's default.
	 */
	if (prev_runnable)
		schedcp_set_slice(prev, slice_ns);
}

SEC("struct_ops/locality_running")
void BPF_PROG(locality_running, struct task_struct *p)
{
	struct loc_cpu *c = cpu_state(scx_bpf_task_cpu(p));
	struct loc_task *tctx;

	if (c) {
		/* Lift a sleeper sent straight to an idle CPU; advance the clock. */
		schedcp_vtime_start(&p->scx.dsq_vtime, &c->vtime_now, slice_ns);
		c->curr_vtime = p->scx.dsq_vtime;
		c->curr_start_ns = bpf_ktime_get_ns();
		c->busy = true;
	}

	tctx = bpf_task_storage_get(&loc_tasks, p, 0, 0);
	if (tctx)
		tctx->run_start = p->se.sum_exec_runtime;
}

SEC("struct_ops/locality_stopping")
void BPF_PROG(locality_stopping, struct task_struct *p, bool runnable)
{
	struct loc_cpu *c = cpu_state(scx_bpf_task_cpu(p));
	struct loc_task *tctx;

	if (c)
		c->busy = false;

	tctx = bpf_task_storage_get(&loc_tasks, p, 0, 0);
	if (tctx)
		p->scx.dsq_vtime += schedcp_task_vtime_since(p, tctx->run_start);
}

SEC("struct_ops/locality_enable")
void BPF_PROG(locality_enable, struct task_struct *p)
{
	struct loc_cpu *c = cpu_state(scx_bpf_task_cpu(p));

	/* A task new to this policy starts level with its CPU's clock. */
	p->scx.dsq_vtime = c ? c->vtime_now : 0;
}

SEC("struct_ops/locality_init_task")
s32 BPF_PROG(locality_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&loc_tasks, p);
}

/* Sleepable: creating DSQs allocates memory. */
SEC("struct_ops.s/locality_init")
s32 BPF_PROG(locality_init)
{
	s32 ret;
	u32 i;

	nr_cpus = scx_bpf_nr_cpu_ids();
	if (nr_cpus > MAX_CPUS) {
		scx_error("locality: %u CPUs, at most %d supported", nr_cpus,
			  MAX_CPUS);
		return -22;	/* -EINVAL */
	}
	/* DSQ id = CPU id. */
	bpf_for(i, 0, nr_cpus) {
		ret = schedcp_create_dsq(i);
		if (ret)
			return ret;
	}
	return 0;
}

SEC("struct_ops/locality_exit")
void BPF_PROG(locality_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops locality_ops = {
	.select_cpu	= (void *)locality_select_cpu,
	.enqueue	= (void *)locality_enqueue,
	.dispatch	= (void *)locality_dispatch,
	.running	= (void *)locality_running,
	.stopping	= (void *)locality_stopping,
	.enable		= (void *)locality_enable,
	.init_task	= (void *)locality_init_task,
	.init		= (void *)locality_init,
	.exit		= (void *)locality_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "locality",
};
