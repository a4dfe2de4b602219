// SPDX-License-Identifier: GPL-2.0
/*
 * fifo: one global first-in-first-out queue for every CPU.
 *
 * A waking task that finds an idle CPU may go straight to that CPU's local
 * queue; every other runnable task joins the tail of one shared DSQ, and any
 * CPU that runs out of work takes the task at its head. No priorities, no
 * weights, no preemption: each task runs until its slice ends or it blocks.
 *
 * A CPU's slice is a turn: a task woken synchronously (a pipe or socket
 * partner; its waker is about to block) runs next on the waker's CPU for the
 * rest of the waker's turn, instead of joining the tail behind every CPU hog.
 * A pair passing messages then exchanges them at full speed for one slice and
 * queues like anyone else after it. Without this, each message waited a whole
 * round of the queue: stress-ng's switch stressor ran at 0.02-0.05x EEVDF's
 * rate and `schedcp verify` failed fifo on its own class (0.22x).
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

/* Our one user DSQ: the queue shared by all CPUs. */
#define FIFO_DSQ 0

/*
 * Tunables, set by userspace between open and load.
 *
 * slice_ns: how long a task may run before the next one in line gets the CPU.
 * Longer slices mean fewer context switches and warmer caches for batch work;
 * shorter ones cut how long a newly woken task waits behind CPU hogs.
 */
const volatile u64 slice_ns = 20000000;	/* 20 ms, the kernel's default */

/*
 * direct_idle: when a waking task finds an idle CPU, put it straight on that
 * CPU's local queue instead of the shared one. Saves a trip through the
 * shared queue (lower wakeup latency, less lock contention on it) at the cost
 * of strict FIFO order: the waking task may run before older queued tasks.
 */
const volatile bool direct_idle = true;

/* CPUs whose turns are tracked (the others get no handoffs). */
#define MAX_CPUS	1024

/* Per CPU: when its current turn began; a handoff continues the turn. */
struct fifo_cpu {
	u64 turn_start;
	bool handoff;		/* the next task to run here was handed off */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct fifo_cpu);
} fifo_cpus SEC(".maps");

/* Stats, read by userspace from .bss and turned into per-interval deltas. */
u64 nr_sync_handoffs;		/* wakees run next on their waker's CPU, in its turn */
u64 nr_enqueued;		/* tasks put on the shared queue */
u64 nr_direct_dispatched;	/* tasks sent straight to an idle CPU */
u64 nr_dispatched;		/* tasks a CPU took from the shared queue */

/*
 * Per task: since when it has been waiting in the shared queue. The queue is
 * ordered by it (a vtime DSQ with the time as the key) rather than by insertion:
 * a task whose nice, policy or affinity changes is dequeued and enqueued again
 * while it waits, and a plain FIFO put it back at the tail each time; changed
 * often enough it never reached the head (the kernel ejected the policy under
 * `schedcp verify`'s stress). 0: not waiting.
 */
struct fifo_task {
	u64 waiting_since;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fifo_task);
} fifo_tasks SEC(".maps");

static __always_inline struct fifo_cpu *cpu_ctx(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&fifo_cpus, &key);
}

SEC("struct_ops/fifo_select_cpu")
s32 BPF_PROG(fifo_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	s32 self = bpf_get_smp_processor_id();
	struct fifo_cpu *c = cpu_ctx(self);
	u64 now = bpf_ktime_get_ns();

	/* See the top: a synchronous wakee takes over the rest of the turn. */
	if ((wake_flags & SCX_WAKE_SYNC) && c && !(p->flags & SCHEDCP_PF_KTHREAD) &&
	    now - c->turn_start < slice_ns &&
	    bpf_cpumask_test_cpu(self, p->cpus_ptr) &&
	    scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL) == 0) {
		c->handoff = true;
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL,
				   slice_ns - (now - c->turn_start), 0);
		__sync_fetch_and_add(&nr_sync_handoffs, 1);
		return self;
	}
	/*
	 * The kernel's choice counts the waker's CPU as idle for a synchronous
	 * wakeup while some other CPU idles. Sent there, a pipe pair took turns
	 * on one CPU for ever and a task that may run only there, queued in our
	 * DSQ, never got it: straight to a CPU only while nobody waits.
	 */
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags,
				       direct_idle && !scx_bpf_dsq_nr_queued(FIFO_DSQ),
				       slice_ns, &nr_direct_dispatched);
}

SEC("struct_ops/fifo_enqueue")
void BPF_PROG(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	/*
	 * Kernel threads first, on the built-in global DSQ, which a CPU serves
	 * before it calls dispatch: they do the system's housekeeping, and the
	 * sched_ext watchdog's work runs on one. Behind a long queue of CPU hogs a
	 * kworker waited more than timeout_ms / 2 and the kernel ejected the
	 * policy ("watchdog failed to check in"; found by `schedcp verify`).
	 */
	if (schedcp_is_percpu_kthread(p)) {
		/*
		 * A per-CPU kernel thread can run nowhere else, and a CPU reaches
		 * the global DSQ only when its local one is empty: behind a pipe
		 * pair handing its turn back and forth there, kworker/0:0 waited
		 * 6.4 s and the kernel ejected the policy (`schedcp demo`).
		 */
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	if (p->flags & SCHEDCP_PF_KTHREAD) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_ns, enq_flags);
		return;
	}
	struct fifo_task *tctx = bpf_task_storage_get(&fifo_tasks, p, 0, 0);
	u64 now = bpf_ktime_get_ns();

	if (tctx && !tctx->waiting_since)
		tctx->waiting_since = now;
	scx_bpf_dsq_insert_vtime(p, FIFO_DSQ, slice_ns, tctx ? tctx->waiting_since : now, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);
}

SEC("struct_ops/fifo_running")
void BPF_PROG(fifo_running, struct task_struct *p)
{
	struct fifo_task *tctx = bpf_task_storage_get(&fifo_tasks, p, 0, 0);
	struct fifo_cpu *c = cpu_ctx(scx_bpf_task_cpu(p));

	if (tctx)
		tctx->waiting_since = 0;
	if (c) {
		/* A handed-off wakee continues its waker's turn. */
		if (!c->handoff)
			c->turn_start = bpf_ktime_get_ns();
		c->handoff = false;
	}
}

SEC("struct_ops/fifo_init_task")
s32 BPF_PROG(fifo_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&fifo_tasks, p);
}

SEC("struct_ops/fifo_dispatch")
void BPF_PROG(fifo_dispatch, s32 cpu, struct task_struct *prev)
{
	schedcp_move_to_local(FIFO_DSQ, &nr_dispatched);
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/fifo_init")
s32 BPF_PROG(fifo_init)
{
	return schedcp_create_dsq(FIFO_DSQ);
}

SEC("struct_ops/fifo_exit")
void BPF_PROG(fifo_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
	.select_cpu	= (void *)fifo_select_cpu,
	.enqueue	= (void *)fifo_enqueue,
	.dispatch	= (void *)fifo_dispatch,
	.running	= (void *)fifo_running,
	.init_task	= (void *)fifo_init_task,
	.init		= (void *)fifo_init,
	.exit		= (void *)fifo_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "fifo",
};
