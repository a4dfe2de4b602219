/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp_common.bpf.h - small pieces of scheduling logic that several
 * built-in policies share, so that each exists once.
 *
 * Include it after schedcp.bpf.h (which stays the kfunc-declaration header):
 *
 *   #include "schedcp.bpf.h"
 *   #include "schedcp_common.bpf.h"
 *
 * Every helper is static __always_inline and takes what it works on (DSQ id,
 * slice, stat counter) as parameters, never a policy's globals, so the code
 * the verifier sees is the code a policy would have written itself. A stat
 * counter parameter may be NULL: nothing is counted (the test folds away at
 * compile time).
 *
 * The repository counts this folder as toolchain, not as part of a policy's
 * version id (docs/repository.md): changing what a helper does changes every
 * policy that uses it without a new version. Keep them behaviour-stable, and
 * add a helper rather than change one that is in use.
 */
#ifndef SCHEDCP_COMMON_BPF_H
#define SCHEDCP_COMMON_BPF_H

#include "schedcp.bpf.h"

/* errno values (macros in the kernel, so not in vmlinux.h); return them negated. */
#define SCHEDCP_ENOMEM	12

/* p->flags bit of kernel threads; the PF_* flags are macros, not in BTF. */
#define SCHEDCP_PF_KTHREAD	0x00200000

/*
 * The weight of a nice-0 task in sched_ext (p->scx.weight ranges 1..10000),
 * and the default cpu.weight of a cgroup: the same scale.
 */
#define SCHEDCP_WEIGHT_DFL	100

/* Count one event in a .bss stat; @counter may be NULL (not counted). */
static __always_inline void schedcp_stat_inc(u64 *counter)
{
	if (counter)
		__sync_fetch_and_add(counter, 1);
}

/*
 * a < b for clocks that may wrap (virtual times, ns stamps). A plain `<`
 * would be wrong once vtime - slice underflows near 0.
 */
static __always_inline bool schedcp_time_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

/* --- select_cpu ---------------------------------------------------------- */

/*
 * Start @p on the local DSQ of the CPU ops.select_cpu returns, with @slice_ns,
 * and count it. Inserting from select_cpu skips ops.enqueue for this wakeup.
 * Only for a CPU that is idle (claimed by scx_bpf_select_cpu_dfl or
 * scx_bpf_test_and_clear_cpu_idle): otherwise @p would wait there behind
 * whatever runs.
 */
static __always_inline void schedcp_insert_local(struct task_struct *p,
						 u64 slice_ns, u64 *nr_direct)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	schedcp_stat_inc(nr_direct);
}

/*
 * The common ops.select_cpu: the kernel's default choice (the previous CPU
 * if idle, else an idle CPU close to it); when that CPU is idle and @direct,
 * start @p there at once (schedcp_insert_local) rather than through the
 * policy's queue. An idle CPU means nothing waits, so no order is broken.
 * Returns the CPU for select_cpu to return.
 */
static __always_inline s32 schedcp_select_cpu_idle(struct task_struct *p,
						   s32 prev_cpu, u64 wake_flags,
						   bool direct, u64 slice_ns,
						   u64 *nr_direct)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle && direct)
		schedcp_insert_local(p, slice_ns, nr_direct);
	return cpu;
}

/* --- enqueue ------------------------------------------------------------- */

/*
 * A task was just queued: if some CPU it may use is idle (it skipped
 * select_cpu, being pinned, or a CPU went idle since), wake that CPU so it
 * comes for the task instead of leaving it to wait. True if one was woken.
 */
static __always_inline bool schedcp_kick_idle(struct task_struct *p,
					      u64 *nr_kicks)
{
	s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

	if (cpu < 0)
		return false;
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	schedcp_stat_inc(nr_kicks);
	return true;
}

/* Per-CPU kernel threads can run nowhere else; policies don't make them wait. */
static __always_inline bool schedcp_is_percpu_kthread(const struct task_struct *p)
{
	return (p->flags & SCHEDCP_PF_KTHREAD) && p->nr_cpus_allowed == 1;
}

/* --- dispatch ------------------------------------------------------------ */

/* Move the head of @dsq_id to this CPU's local DSQ and count it; true if moved. */
static __always_inline bool schedcp_move_to_local(u64 dsq_id, u64 *nr_moved)
{
	if (!scx_bpf_dsq_move_to_local(dsq_id))
		return false;
	schedcp_stat_inc(nr_moved);
	return true;
}

/*
 * Does @prev (ops.dispatch's argument) want to go on running? The kernel
 * calls dispatch before it puts a task whose slice ended back in the queue,
 * and then the task still has SCX_TASK_QUEUED; a task that blocked has not.
 */
static __always_inline bool schedcp_prev_runnable(const struct task_struct *prev)
{
	return prev && (prev->scx.flags & SCX_TASK_QUEUED);
}

/*
 * Give @p (running, or @prev in dispatch) a new slice of @slice_ns. When
 * dispatch finds nothing to run, the kernel lets @prev run on but refills its
 * slice with its own 20 ms default: this keeps the policy's slice instead.
 * Without scx_bpf_task_set_slice (older kernels) nothing happens.
 */
static __always_inline void schedcp_set_slice(struct task_struct *p, u64 slice_ns)
{
	if (bpf_ksym_exists(scx_bpf_task_set_slice))
		scx_bpf_task_set_slice(p, slice_ns);
}

/*
 * Dispatch decided that @prev, whose slice ended, keeps its CPU rather than
 * make way for the queue's head: refill its slice and count it. The caller
 * then returns without moving a task.
 */
static __always_inline void schedcp_keep_running(struct task_struct *prev,
						 u64 slice_ns, u64 *nr_kept)
{
	schedcp_set_slice(prev, slice_ns);
	schedcp_stat_inc(nr_kept);
}

/*
 * The vtime (sort key) of the task at the head of @dsq_id, into *@vtime.
 * False if the DSQ is empty or the kernel lacks scx_bpf_dsq_peek; a
 * "keep @prev while it is behind the head" rule then hands over the CPU, as
 * plain dispatch would.
 */
static __always_inline bool schedcp_dsq_head_vtime(u64 dsq_id, u64 *vtime)
{
	struct task_struct *head;

	if (!bpf_ksym_exists(scx_bpf_dsq_peek))
		return false;
	head = scx_bpf_dsq_peek(dsq_id);
	if (!head)
		return false;
	*vtime = head->scx.dsq_vtime;
	return true;
}

/* --- virtual time -------------------------------------------------------- */

/*
 * Virtual time for @ns of CPU time at @weight (not 0): @ns at the default
 * weight, less for heavier tasks or cgroups, more for lighter ones. This is
 * what makes CPU time shared in proportion to weight.
 */
static __always_inline u64 schedcp_vtime_delta(u64 ns, u64 weight)
{
	return ns * SCHEDCP_WEIGHT_DFL / weight;
}

/*
 * The lightest weight a task counts with: a tenth of nice 0 (about nice 10).
 * SCHED_IDLE and nice-19 tasks have weight 1, and charged at that they waited
 * 100 times longer than a nice-0 task: behind a dozen CPU hogs over 20 s. A
 * task preempted inside an RCU read-side section that long makes the kernel
 * eject the scheduler ("RCU CPU stall"; vtime and locality, found by `schedcp
 * verify`). Nice still orders tasks; the very lightest get at least a tenth.
 */
#define SCHEDCP_WEIGHT_MIN	10

/* Virtual time @p has earned since its CPU time was @run_start, at its nice weight. */
static __always_inline u64 schedcp_task_vtime_since(const struct task_struct *p,
						    u64 run_start)
{
	u64 weight = p->scx.weight;

	return schedcp_vtime_delta(p->se.sum_exec_runtime - run_start,
				   weight > SCHEDCP_WEIGHT_MIN ? weight : SCHEDCP_WEIGHT_MIN);
}

/*
 * Where to queue something (task or cgroup) of virtual time @vtime on a
 * clock at @now: at most @max_lag behind it, so that a sleeper cannot bank
 * credit and then run unopposed for as long as it slept, and at most
 * @max_lead ahead of it, so that a very light task charged a lot at once does
 * not wait long enough for the watchdog to eject the policy. Counts each
 * clamp in *@nr_lag / *@nr_lead.
 */
static __always_inline u64 schedcp_vtime_clamp(u64 vtime, u64 now, u64 max_lag,
					       u64 max_lead, u64 *nr_lag,
					       u64 *nr_lead)
{
	if (schedcp_time_before(vtime, now - max_lag)) {
		schedcp_stat_inc(nr_lag);
		return now - max_lag;
	}
	if (schedcp_time_before(now + max_lead, vtime)) {
		schedcp_stat_inc(nr_lead);
		return now + max_lead;
	}
	return vtime;
}

/*
 * How long a task queued ahead of the clock should wait at most, whatever the
 * number of tasks: a tenth of the 5 s watchdog timeout the policies set.
 */
#define SCHEDCP_MAX_WAIT_NS	(500ULL * 1000 * 1000)

/*
 * The lead (see schedcp_vtime_clamp) for a queue that @nr_waiting tasks
 * share on @nr_cpus CPUs: @max_slices slices, but no more than lets the
 * waiting tasks each run that far before this one, SCHEDCP_MAX_WAIT_NS in
 * all, and never less than two slices (a nice-0 task that just ran a full
 * slice is one slice ahead and must not be clamped). A fixed lead of 20
 * slices was fine for a few hogs, but under the verifier's stress (forks,
 * short-lived threads: 40+ queued tasks) a nice-19 task placed 20 slices
 * ahead waited 7 s and the watchdog ejected the policy (locality, `schedcp
 * verify`). With few tasks waiting, nice keeps its full effect.
 */
static __always_inline u64 schedcp_max_lead(u64 slice, u64 max_slices,
					    s32 nr_waiting, u32 nr_cpus)
{
	u64 lead = max_slices * slice, bound;

	if (nr_waiting <= 0)
		return lead;
	bound = SCHEDCP_MAX_WAIT_NS * (nr_cpus ?: 1) / (u64)nr_waiting;
	if (bound < 2 * slice)
		bound = 2 * slice;
	return bound < lead ? bound : lead;
}

/*
 * From ops.running: lift *@vtime to at most @max_lag behind *@clock (a task
 * sent straight to an idle CPU skipped the clamp at enqueue; a long sleeper
 * must not bring its old credit to the CPU), then advance the clock to it.
 * The clock is the vtime of the most advanced task that started running. A
 * racy max across CPUs: a lost update only delays the clock a little.
 * *@vtime is written only when it is lifted, so a concurrent charge to it
 * is lost only then.
 */
static __always_inline void schedcp_vtime_start(u64 *vtime, u64 *clock,
						u64 max_lag)
{
	u64 now = *clock;

	if (schedcp_time_before(*vtime, now - max_lag))
		*vtime = now - max_lag;
	if (schedcp_time_before(now, *vtime))
		*clock = *vtime;
}

/* --- init / init_task ---------------------------------------------------- */

/*
 * Create DSQ @dsq_id on any NUMA node (from the sleepable ops.init: it
 * allocates). On failure disable the policy with a message naming the DSQ,
 * and return the error for init to return. (The kernel's report names the
 * policy; passing names in as strings would add a .rodata.str1.1 map.)
 */
static __always_inline s32 schedcp_create_dsq(u64 dsq_id)
{
	s32 ret;

	ret = scx_bpf_create_dsq(dsq_id, SCHEDCP_ANY_NODE);
	if (ret)
		scx_error("creating DSQ %llu failed (%d)", dsq_id, ret);
	return ret;
}

/*
 * ops.init_task for a policy with per-task storage in @task_map (a
 * BPF_MAP_TYPE_TASK_STORAGE): create @p's zeroed record now, where failing
 * is allowed (-ENOMEM refuses the task), so the other callbacks find it.
 */
static __always_inline s32 schedcp_init_task_storage(void *task_map,
						     struct task_struct *p)
{
	if (!bpf_task_storage_get(task_map, p, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -SCHEDCP_ENOMEM;
	return 0;
}

/* The number of CPU ids, at most @max (the size of a policy's per-CPU arrays). */
static __always_inline u32 schedcp_nr_cpus(u32 max)
{
	u32 n = scx_bpf_nr_cpu_ids();

	return n < max ? n : max;
}

#endif /* SCHEDCP_COMMON_BPF_H */
