// SPDX-License-Identifier: GPL-2.0
/*
 * vtime: weighted virtual-time fairness over one shared queue.
 *
 * Every task carries a virtual time (p->scx.dsq_vtime). Running for d
 * nanoseconds advances it by d * 100 / weight, where the weight comes from
 * the task's nice value (100 at nice 0, about 10x per 5 nice levels). All
 * waiting tasks sit in one DSQ ordered by virtual time, and a CPU that needs
 * work takes the task that is furthest behind. Heavier tasks advance more
 * slowly, so they come back to the head of the queue sooner: CPU time is
 * shared in proportion to weight.
 *
 * The global clock, vtime_now, follows the tasks that run. A task that slept
 * keeps its old virtual time, which would let it run unopposed for as long as
 * it slept; so when it is queued again it is placed at most one slice behind
 * vtime_now. For the same reason in the other direction (a very light task
 * charged a lot at once would wait for a long time, and the watchdog ejects
 * the policy after 5 s), a task is never placed more than MAX_LEAD_SLICES
 * slices ahead of it, and fewer when many tasks wait (schedcp_max_lead).
 *
 * The kernel asks for the next task (ops.dispatch) before it puts the
 * running one back in the queue, so taking the head of the queue at every
 * slice end would be round-robin, whatever the weights, whenever few tasks
 * wait. So at a slice end the running task keeps the CPU while it is still
 * behind the head of the queue, counting the time it has just run.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

/* Our one user DSQ, ordered by virtual time. */
#define VTIME_DSQ 0

/* How far ahead of vtime_now a task may be placed, in slices; see above. */
#define MAX_LEAD_SLICES 20

/*
 * Tunables, set by userspace between open and load.
 *
 * slice_ns: how long a task runs before the next one in vtime order gets the
 * CPU, and how much credit a woken sleeper keeps (one slice). Shorter slices
 * mean lower wakeup latency beside CPU hogs and finer-grained fairness; longer
 * ones mean fewer context switches and warmer caches.
 */
const volatile u64 slice_ns = 5000000;	/* 5 ms */

/*
 * direct_idle: when a waking task finds an idle CPU, put it straight on that
 * CPU's local queue. Lower wakeup latency and less contention on the shared
 * queue; the task skips the vtime order, which only matters when some CPU is
 * idle anyway.
 */
const volatile bool direct_idle = true;

/* Stats, read by userspace from .bss. */
u64 nr_enqueued;		/* tasks put on the shared vtime queue */
u64 nr_direct_dispatched;	/* waking tasks sent straight to an idle CPU */
u64 nr_dispatched;		/* tasks a CPU took from the shared queue */
u64 nr_lag_clamped;		/* sleepers moved up to one slice behind vtime_now */
u64 nr_lead_clamped;		/* tasks moved back to MAX_LEAD_SLICES ahead */
u64 nr_kept;			/* slice ends where the running task stayed ahead */

/* The virtual time of the most advanced task that has started running. */
static u64 vtime_now SCHEDCP_STATE;

/* Per task: where its current run started, in CPU time (sum_exec_runtime). */
struct vtime_task {
	u64 run_start;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vtime_task);
} vtime_tasks SEC(".maps");

SEC("struct_ops/vtime_select_cpu")
s32 BPF_PROG(vtime_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, direct_idle,
				       slice_ns, &nr_direct_dispatched);
}

SEC("struct_ops/vtime_enqueue")
void BPF_PROG(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	/* Within [vtime_now - slice, vtime_now + lead]: see the top. */
	u64 lead = schedcp_max_lead(slice_ns, MAX_LEAD_SLICES,
				    scx_bpf_dsq_nr_queued(VTIME_DSQ),
				    scx_bpf_nr_cpu_ids());
	u64 vtime = schedcp_vtime_clamp(p->scx.dsq_vtime, vtime_now, slice_ns,
					lead,
					&nr_lag_clamped, &nr_lead_clamped);

	scx_bpf_dsq_insert_vtime(p, VTIME_DSQ, slice_ns, vtime, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);
	/* Pinned, or a CPU went idle since select_cpu: don't wait for no reason. */
	schedcp_kick_idle(p, NULL);
}

/* @p's virtual time now, counting its current run (it is running). */
static __always_inline u64 vtime_running_now(struct task_struct *p)
{
	struct vtime_task *tctx;

	tctx = bpf_task_storage_get(&vtime_tasks, p, 0, 0);
	if (!tctx)
		return p->scx.dsq_vtime;
	return p->scx.dsq_vtime + schedcp_task_vtime_since(p, tctx->run_start);
}

/* Should @prev, whose slice ended, run on rather than the queue's head? */
static __always_inline bool keep_prev(struct task_struct *prev)
{
	u64 head_vtime;

	if (!schedcp_dsq_head_vtime(VTIME_DSQ, &head_vtime))
		return false;
	/*
	 * Not a reason to advance vtime_now: @prev may be switched out right
	 * now, and the clock must not run ahead of the tasks that get the CPU.
	 */
	return schedcp_time_before(vtime_running_now(prev), head_vtime);
}

SEC("struct_ops/vtime_dispatch")
void BPF_PROG(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	bool prev_runnable = schedcp_prev_runnable(prev);

	if (prev_runnable && keep_prev(prev)) {
		schedcp_keep_running(prev, slice_ns, &nr_kept);
		return;
	}
	if (schedcp_move_to_local(VTIME_DSQ, &nr_dispatched))
		return;
	/*
	 * Nothing waits: @prev runs on. With our slice, not the kernel's 20 ms
	 * default, so a task that wakes meanwhile waits at most slice_ns.
	 */
	if (prev_runnable)
		schedcp_set_slice(prev, slice_ns);
}

SEC("struct_ops/vtime_running")
void BPF_PROG(vtime_running, struct task_struct *p)
{
	struct vtime_task *tctx;

	/* Lift a sleeper sent straight to an idle CPU; advance vtime_now. */
	schedcp_vtime_start(&p->scx.dsq_vtime, &vtime_now, slice_ns);

	tctx = bpf_task_storage_get(&vtime_tasks, p, 0, 0);
	if (tctx)
		tctx->run_start = p->se.sum_exec_runtime;
}

SEC("struct_ops/vtime_stopping")
void BPF_PROG(vtime_stopping, struct task_struct *p, bool runnable)
{
	struct vtime_task *tctx;

	tctx = bpf_task_storage_get(&vtime_tasks, p, 0, 0);
	if (tctx)
		p->scx.dsq_vtime += schedcp_task_vtime_since(p, tctx->run_start);
}

SEC("struct_ops/vtime_enable")
void BPF_PROG(vtime_enable, struct task_struct *p)
{
	/* A task new to this policy starts level with the running ones. */
	p->scx.dsq_vtime = vtime_now;
}

SEC("struct_ops/vtime_init_task")
s32 BPF_PROG(vtime_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&vtime_tasks, p);
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/vtime_init")
s32 BPF_PROG(vtime_init)
{
	return schedcp_create_dsq(VTIME_DSQ);
}

SEC("struct_ops/vtime_exit")
void BPF_PROG(vtime_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops vtime_ops = {
	.select_cpu	= (void *)vtime_select_cpu,
	.enqueue	= (void *)vtime_enqueue,
	.dispatch	= (void *)vtime_dispatch,
	.running	= (void *)vtime_running,
	.stopping	= (void *)vtime_stopping,
	.enable		= (void *)vtime_enable,
	.init_task	= (void *)vtime_init_task,
	.init		= (void *)vtime_init,
	.exit		= (void *)vtime_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "vtime",
};
