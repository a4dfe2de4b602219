// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup_fair: CPU time shared between cgroups in proportion to cpu.weight.
 *
 * Each cgroup (with the cpu controller) carries a virtual time: when one of
 * its tasks runs for d nanoseconds, the cgroup's vtime advances by
 * d * 100 / cpu.weight. Runnable tasks wait in one shared DSQ, keyed by their
 * cgroup's vtime at the moment they were queued, and a CPU that needs work
 * takes the lowest key. So the cgroup that is furthest behind runs next, and
 * over time every busy cgroup's vtime advances at the same rate: a cgroup with
 * twice the weight gets twice the CPU. Inside a cgroup the keys only grow, so
 * its tasks run first-come first-served.
 *
 * As with per-task vtime, a cgroup that was idle comes back at most one slice
 * behind the global vtime (it cannot bank credit while idle), and at most
 * MAX_LEAD_SLICES slices ahead of it (a very light cgroup would otherwise
 * wait long enough for the watchdog to eject the policy).
 *
 * The kernel asks for the next task (ops.dispatch) before it puts the
 * running one back in the queue, so taking the head at every slice end
 * would give every waiting cgroup a turn whatever the weights. So at a slice
 * end the running task keeps the CPU while its cgroup, counting the run just
 * done, is still behind the head of the queue.
 *
 * Weights are flat: every cgroup competes with every other by its own
 * cpu.weight, whatever its parent's weight. Tasks in the root cgroup count
 * as one more cgroup of weight 100.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0
#define MAX_LEAD_SLICES	20

/*
 * Tunables, set by userspace between open and load.
 *
 * slice_ns: how long a task runs before the next in line gets the CPU; also
 * the credit an idle cgroup keeps. Shorter: finer-grained sharing and lower
 * wakeup latency; longer: fewer context switches.
 */
const volatile u64 slice_ns = 5000000;	/* 5 ms */

/* Stats, read by userspace from .bss. */
u64 nr_enqueued;		/* tasks put on the shared queue */
u64 nr_direct_dispatched;	/* waking tasks sent straight to an idle CPU */
u64 nr_dispatched;		/* tasks a CPU took from the shared queue */
u64 nr_cgroups;			/* cgroups initialised (with the cpu controller) */
u64 nr_weight_changes;		/* cpu.weight writes seen */
u64 nr_no_cgroup_ctx;		/* tasks whose cgroup had no state (queued at vtime_now) */
u64 nr_kept;			/* slice ends where the running task's cgroup stayed ahead */

/* The largest queue key among the tasks that have started running. */
static u64 vtime_now SCHEDCP_STATE;

struct cg_ctx {
	u64 vtime;
	u32 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cg_ctx);
} cg_ctxs SEC(".maps");

struct cg_task {
	u64 run_start;	/* sum_exec_runtime when it last started running */
	u64 cgid;	/* id of its cgroup then (dispatch may not ask the kernel) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cg_task);
} cg_tasks SEC(".maps");

/* The state of @p's cgroup, or NULL. */
static __always_inline struct cg_ctx *task_cg(struct task_struct *p)
{
	struct cgroup *cgrp;
	struct cg_ctx *cg;

	cgrp = scx_bpf_task_cgroup(p);
	if (!cgrp)
		return NULL;
	cg = bpf_cgrp_storage_get(&cg_ctxs, cgrp, 0, 0);
	bpf_cgroup_release(cgrp);
	return cg;
}

SEC("struct_ops/cgroup_fair_select_cpu")
s32 BPF_PROG(cgroup_fair_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, true, slice_ns,
				       &nr_direct_dispatched);
}

SEC("struct_ops/cgroup_fair_enqueue")
void BPF_PROG(cgroup_fair_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 now = vtime_now, key = now, vtime;
	struct cg_ctx *cg;

	cg = task_cg(p);
	if (cg) {
		/*
		 * Keep the cgroup within [now - slice, now + lead]. The write
		 * can lose a concurrent charge; it is rare (only a cgroup
		 * outside the window) and worth at most a slice.
		 */
		vtime = cg->vtime;
		key = schedcp_vtime_clamp(vtime, now, slice_ns,
					  schedcp_max_lead(slice_ns, MAX_LEAD_SLICES,
							   scx_bpf_dsq_nr_queued(SHARED_DSQ),
							   scx_bpf_nr_cpu_ids()),
					  NULL, NULL);
		if (key != vtime)
			cg->vtime = key;
	} else {
		__sync_fetch_and_add(&nr_no_cgroup_ctx, 1);
	}
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, slice_ns, key, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);

	/* A CPU @p may use went idle meanwhile (or @p is pinned): wake it. */
	schedcp_kick_idle(p, NULL);
}

/* Charge of @p's current run so far to a cgroup of weight @weight. */
static __always_inline u64 running_charge(struct task_struct *p, u64 weight)
{
	struct cg_task *tctx = bpf_task_storage_get(&cg_tasks, p, 0, 0);

	if (!tctx)
		return 0;
	return schedcp_vtime_delta(p->se.sum_exec_runtime - tctx->run_start,
				   weight ?: SCHEDCP_WEIGHT_DFL);
}

/*
 * Should @prev, whose slice ended, run on rather than the queue's head?
 * scx_bpf_task_cgroup() only works on the tasks an operation is about, and
 * ops.dispatch is not about @prev: find its cgroup by the id noted when it
 * started running.
 */
static __always_inline bool keep_prev(struct task_struct *prev)
{
	struct cg_task *tctx;
	struct cgroup *cgrp;
	struct cg_ctx *cg;
	u64 head_vtime, vtime;

	if (!schedcp_dsq_head_vtime(SHARED_DSQ, &head_vtime))
		return false;
	tctx = bpf_task_storage_get(&cg_tasks, prev, 0, 0);
	if (!tctx)
		return false;
	cgrp = bpf_cgroup_from_id(tctx->cgid);
	if (!cgrp)
		return false;
	cg = bpf_cgrp_storage_get(&cg_ctxs, cgrp, 0, 0);
	bpf_cgroup_release(cgrp);
	if (!cg)
		return false;
	vtime = cg->vtime +
		schedcp_vtime_delta(prev->se.sum_exec_runtime - tctx->run_start,
				    cg->weight ?: SCHEDCP_WEIGHT_DFL);
	return schedcp_time_before(vtime, head_vtime);
}

SEC("struct_ops/cgroup_fair_dispatch")
void BPF_PROG(cgroup_fair_dispatch, s32 cpu, struct task_struct *prev)
{
	bool prev_runnable = schedcp_prev_runnable(prev);

	if (prev_runnable && keep_prev(prev)) {
		schedcp_keep_running(prev, slice_ns, &nr_kept);
		return;
	}
	if (schedcp_move_to_local(SHARED_DSQ, &nr_dispatched))
		return;
	/* Nothing waits: @prev runs on, with our slice, not the 20 ms default. */
	if (prev_runnable)
		schedcp_set_slice(prev, slice_ns);
}

SEC("struct_ops/cgroup_fair_running")
void BPF_PROG(cgroup_fair_running, struct task_struct *p)
{
	struct cg_task *tctx;
	struct cgroup *cgrp;
	struct cg_ctx *cg = NULL;

	tctx = bpf_task_storage_get(&cg_tasks, p, 0, 0);
	cgrp = scx_bpf_task_cgroup(p);
	if (cgrp) {
		if (tctx)
			tctx->cgid = cgrp->kn->id;
		cg = bpf_cgrp_storage_get(&cg_ctxs, cgrp, 0, 0);
		bpf_cgroup_release(cgrp);
	}
	/*
	 * A task sent straight to an idle CPU skipped the clamp in enqueue:
	 * an idle cgroup must not bring old credit along.
	 */
	if (cg && schedcp_time_before(cg->vtime, vtime_now - slice_ns))
		cg->vtime = vtime_now - slice_ns;
	/*
	 * The clock advances to the key @p was queued with: the queue's
	 * progress. Not to its cgroup's vtime, which already counts what the
	 * cgroup's other tasks ran meanwhile: a cgroup with many tasks would
	 * pull the clock ahead of everyone, and the clamp above would then
	 * throw away the lag a heavier cgroup with fewer tasks is owed (with
	 * 4 hogs at weight 100 against 2 at weight 300 that cgroup got
	 * 42-46% of the CPU instead of 75%).
	 */
	if (schedcp_time_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
	if (tctx)
		tctx->run_start = p->se.sum_exec_runtime;
}

SEC("struct_ops/cgroup_fair_stopping")
void BPF_PROG(cgroup_fair_stopping, struct task_struct *p, bool runnable)
{
	struct cg_ctx *cg;

	cg = task_cg(p);
	if (!cg)
		return;
	__sync_fetch_and_add(&cg->vtime, running_charge(p, cg->weight));
}

SEC("struct_ops/cgroup_fair_init_task")
s32 BPF_PROG(cgroup_fair_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&cg_tasks, p);
}

SEC("struct_ops/cgroup_fair_cgroup_init")
s32 BPF_PROG(cgroup_fair_cgroup_init, struct cgroup *cgrp,
	     struct scx_cgroup_init_args *args)
{
	struct cg_ctx *cg;

	cg = bpf_cgrp_storage_get(&cg_ctxs, cgrp, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!cg)
		return -SCHEDCP_ENOMEM;
	cg->weight = args->weight;
	cg->vtime = vtime_now;
	__sync_fetch_and_add(&nr_cgroups, 1);
	return 0;
}

SEC("struct_ops/cgroup_fair_cgroup_set_weight")
void BPF_PROG(cgroup_fair_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	struct cg_ctx *cg;

	cg = bpf_cgrp_storage_get(&cg_ctxs, cgrp, 0, 0);
	if (cg)
		cg->weight = weight;
	__sync_fetch_and_add(&nr_weight_changes, 1);
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/cgroup_fair_init")
s32 BPF_PROG(cgroup_fair_init)
{
	return schedcp_create_dsq(SHARED_DSQ);
}

SEC("struct_ops/cgroup_fair_exit")
void BPF_PROG(cgroup_fair_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops cgroup_fair_ops = {
	.select_cpu		= (void *)cgroup_fair_select_cpu,
	.enqueue		= (void *)cgroup_fair_enqueue,
	.dispatch		= (void *)cgroup_fair_dispatch,
	.running		= (void *)cgroup_fair_running,
	.stopping		= (void *)cgroup_fair_stopping,
	.init_task		= (void *)cgroup_fair_init_task,
	.cgroup_init		= (void *)cgroup_fair_cgroup_init,
	.cgroup_set_weight	= (void *)cgroup_fair_cgroup_set_weight,
	.init			= (void *)cgroup_fair_init,
	.exit			= (void *)cgroup_fair_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms		= 5000,
	.name			= "cgroup_fair",
};
