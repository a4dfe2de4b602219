// SPDX-License-Identifier: GPL-2.0
/*
 * jobsize: job-size aware batch scheduling.
 *
 * Longest-job-first (LJF) shortens a batch's makespan: the longest job starts
 * at once and never waits, while the short jobs share the other CPUs. Shortest
 * job first (SJF) shortens the mean completion time instead. `longest_first`
 * picks one.
 *
 * A job's size comes from a hint when there is one: a task whose name starts
 * with `long_prefix` or `short_prefix` is a long or a short job. Without a hint
 * the size is guessed from the CPU time the task has used so far and, with
 * `learn_comm`, from the CPU time of finished tasks of the same name.
 *
 * Order: one priority DSQ sorted by a size key (vtime). The key's top bits
 * are a rank (0: hinted jobs of the preferred size, 1: unhinted tasks,
 * 2: hinted jobs of the other size); the low bits order tasks inside a rank:
 * hinted jobs by when they got their hint (jobs of equal size run to
 * completion one after the other), unhinted tasks by their size guess.
 *
 * Nothing starves: a strict priority order would let the kernel's watchdog
 * eject the policy when a task waits longer than timeout_ms. Every
 * max_wait_ns / 8 one dispatching CPU scans the priority DSQ and moves each
 * task that has waited longer than max_wait_ns to a FIFO "aged" DSQ, which
 * every CPU serves first, with a short slice (aged_slice_ns). So a task waits
 * at most about max_wait_ns plus a scan interval, and the guard costs the
 * favoured jobs one short slice per waiting task per max_wait_ns.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define PRIO_DSQ	0	/* everything, by size key */
#define AGED_DSQ	1	/* tasks rescued by the starvation guard, FIFO */

#define RANK_SHIFT	60	/* key = rank << 60 | order inside the rank */
#define SIZE_CAP_NS	(1ULL << 40)	/* ~18 min: sizes above are all "huge" */
#define COMM_LEN	16

enum js_class { JS_UNHINTED, JS_LONG, JS_SHORT };

/*
 * Tunables, set by userspace between open and load.
 *
 * longest_first: true = LJF (minimise makespan), false = SJF (minimise mean
 * completion time).
 */
const volatile bool longest_first = true;

/*
 * long_prefix / short_prefix: task-name prefixes that mark long and short
 * jobs. An empty prefix matches nothing. The long-tail benchmark names its
 * jobs lt_long_<tool> and lt_short_<tool>.
 */
const volatile char long_prefix[16] = "lt_long_";
const volatile char short_prefix[16] = "lt_short_";

/*
 * learn_comm: guess an unhinted task's size also from the CPU time of
 * finished tasks with the same name (an average per name), not only from the
 * CPU time it has used so far. Helps when the same programs run again and
 * again; misleads when one name does jobs of very different sizes.
 */
const volatile bool learn_comm = true;

/*
 * slice_ns: the normal slice. A task keeps its CPU at the end of a slice when
 * it still has the best key, so this mostly bounds how long a better task
 * waits for a CPU.
 */
const volatile u64 slice_ns = 20000000;	/* 20 ms */

/*
 * max_wait_ns: the starvation guard's threshold. Larger: the size order holds
 * longer (better makespan / mean completion) but a disfavoured task waits up
 * to this long; it must stay well below the 5 s watchdog timeout.
 */
const volatile u64 max_wait_ns = 2000000000;	/* 2 s */

/*
 * aged_slice_ns: the slice a task rescued by the guard gets. Short keeps the
 * guard cheap for the favoured jobs; long lets starved tasks make progress.
 */
const volatile u64 aged_slice_ns = 5000000;	/* 5 ms */

/* Stats, read by userspace from .bss. */
u64 nr_long_hinted;		/* enqueues of tasks named long_prefix* */
u64 nr_short_hinted;		/* enqueues of tasks named short_prefix* */
u64 nr_unhinted;		/* enqueues ordered by guessed size */
u64 nr_direct_dispatched;	/* wakeups sent straight to an idle CPU */
u64 nr_kthread_local;		/* per-CPU kernel threads run on their CPU */
u64 nr_kept_running;		/* slice ends where the task kept its CPU */
u64 nr_dispatched;		/* tasks taken from the priority DSQ */
u64 nr_aged;			/* tasks moved to the aged DSQ by the guard */
u64 max_queue_wait_ns;		/* longest wait from enqueue to running seen */
u64 nr_light_wakeups;		/* light sleepers and new tasks given a turn first */

struct js_task {
	u64 hinted_at;	/* when the task got its current class */
	u64 enq_at;	/* when it last joined a DSQ */
	u64 woke_runtime; /* sum_exec_runtime when it last woke up */
	u32 cls;	/* enum js_class */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct js_task);
} task_ctx SEC(".maps");

struct comm_key {
	char comm[COMM_LEN];
};

/* Average CPU time of finished tasks, per task name (learn_comm). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct comm_key);
	__type(value, u64);
} comm_size SEC(".maps");

static u64 last_scan_ns SCHEDCP_STATE;	/* when the guard last scanned */

static bool has_prefix(const char *comm, const volatile char *prefix)
{
	int i;

#pragma unroll
	for (i = 0; i < COMM_LEN; i++) {
		char c = prefix[i];

		if (!c)
			return i > 0;	/* an empty prefix matches nothing */
		if (comm[i] != c)
			return false;
	}
	return true;
}

static u32 classify(struct task_struct *p, struct comm_key *name)
{
	bpf_probe_read_kernel(name->comm, sizeof(name->comm), p->comm);
	if (has_prefix(name->comm, long_prefix))
		return JS_LONG;
	if (has_prefix(name->comm, short_prefix))
		return JS_SHORT;
	return JS_UNHINTED;
}

/* Expected size of an unhinted task: CPU time so far, or its name's average. */
static u64 guess_size(struct task_struct *p, struct comm_key *name)
{
	u64 size = p->se.sum_exec_runtime;
	u64 *learned;

	if (learn_comm) {
		learned = bpf_map_lookup_elem(&comm_size, name);
		if (learned && *learned > size)
			size = *learned;
	}
	return size < SIZE_CAP_NS ? size : SIZE_CAP_NS;
}

/* The size key: smaller runs first. Updates tctx->cls / hinted_at. */
static u64 size_key(struct task_struct *p, struct js_task *tctx, u64 now)
{
	struct comm_key name = {};
	u32 favoured = longest_first ? JS_LONG : JS_SHORT;
	u32 cls = classify(p, &name);
	u64 size;

	if (tctx->cls != cls || !tctx->hinted_at) {
		tctx->cls = cls;
		tctx->hinted_at = now;
	}
	if (cls != JS_UNHINTED) {
		/* Equal sizes: the job that started first finishes first. */
		u64 rank = cls == favoured ? 0 : 2;

		return rank << RANK_SHIFT | (tctx->hinted_at & ((1ULL << RANK_SHIFT) - 1));
	}
	size = guess_size(p, &name);
	return 1ULL << RANK_SHIFT | (longest_first ? SIZE_CAP_NS - size : size);
}

static void count_class(u32 cls)
{
	if (cls == JS_LONG)
		__sync_fetch_and_add(&nr_long_hinted, 1);
	else if (cls == JS_SHORT)
		__sync_fetch_and_add(&nr_short_hinted, 1);
	else
		__sync_fetch_and_add(&nr_unhinted, 1);
}

SEC("struct_ops/jobsize_select_cpu")
s32 BPF_PROG(jobsize_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, true, slice_ns,
				       &nr_direct_dispatched);
}

SEC("struct_ops/jobsize_enqueue")
void BPF_PROG(jobsize_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct js_task *tctx;
	u64 now = bpf_ktime_get_ns();
	u64 key, ran;

	/* Per-CPU kernel threads can run nowhere else: don't make them wait. */
	if (schedcp_is_percpu_kthread(p)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		__sync_fetch_and_add(&nr_kthread_local, 1);
		return;
	}

	/*
	 * Other kernel threads first, on the built-in global DSQ, which a CPU serves
	 * before it calls dispatch: they do the system's housekeeping, and the
	 * sched_ext watchdog's work runs on one. Behind a long queue of CPU hogs a
	 * kworker waited more than timeout_ms / 2 and the kernel ejected the
	 * policy ("watchdog failed to check in"; found by `schedcp verify`).
	 */
	if (p->flags & SCHEDCP_PF_KTHREAD) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, aged_slice_ns, enq_flags);
		return;
	}

	tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	if (!tctx) {
		/* No storage (allocation failed at init_task): plain FIFO. */
		scx_bpf_dsq_insert(p, AGED_DSQ, slice_ns, enq_flags);
		return;
	}
	/*
	 * A task that sleeps is not a batch job while it does: one that woke up
	 * after using less than slice_ns of CPU since it last woke (a shell, a
	 * daemon, the reader of a pipe), or one that has never run (a new fork),
	 * gets one short turn ahead of the size order, on the aged DSQ. Ranked by
	 * size it waited up to max_wait_ns at every wakeup: under longest-first
	 * that is seconds per keystroke on a busy machine (`schedcp verify`'s
	 * wakeup probe saw 2.2 s). CPU-bound jobs do not sleep, so their order,
	 * and the makespan, are unchanged.
	 */
	ran = p->se.sum_exec_runtime;
	if ((enq_flags & SCX_ENQ_WAKEUP) || !ran) {
		bool light = ran - tctx->woke_runtime < slice_ns;

		tctx->woke_runtime = ran;
		if (light) {
			__sync_fetch_and_add(&nr_light_wakeups, 1);
			scx_bpf_dsq_insert(p, AGED_DSQ, aged_slice_ns, enq_flags);
			return;
		}
	}

	key = size_key(p, tctx, now);
	/*
	 * Waiting since the task became runnable, not since this enqueue: a task
	 * whose nice, policy or affinity changes is dequeued and enqueued again
	 * while it waits, and restarting its clock each time kept it from ever
	 * reaching max_wait_ns (the kernel ejected the policy under `schedcp
	 * verify`'s stress). jobsize_running clears it.
	 */
	if (!tctx->enq_at)
		tctx->enq_at = now;
	count_class(tctx->cls);
	scx_bpf_dsq_insert_vtime(p, PRIO_DSQ, slice_ns, key, enq_flags);
}

/* Move every task that waited longer than max_wait_ns to the aged DSQ. */
static void starvation_guard(u64 now)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	struct js_task *tctx;
	u64 last = last_scan_ns;

	if (now - last < max_wait_ns / 8 ||
	    __sync_val_compare_and_swap(&last_scan_ns, last, now) != last)
		return;		/* not due, or another CPU is scanning */

	/*
	 * The iterator visits only the tasks queued when it started, so the
	 * walk ends. (No counter: it would keep the verifier from seeing that
	 * the loop's states converge.)
	 */
	bpf_iter_scx_dsq_new(&it, PRIO_DSQ, 0);
	while ((p = bpf_iter_scx_dsq_next(&it))) {
		tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
		if (!tctx || (s64)(now - tctx->enq_at) <= (s64)max_wait_ns)
			continue;
		scx_bpf_dsq_move_set_slice(&it, aged_slice_ns);
		if (scx_bpf_dsq_move(&it, p, AGED_DSQ, 0))
			__sync_fetch_and_add(&nr_aged, 1);
	}
	bpf_iter_scx_dsq_destroy(&it);
}

SEC("struct_ops/jobsize_dispatch")
void BPF_PROG(jobsize_dispatch, s32 cpu, struct task_struct *prev)
{
	struct task_struct *head;
	struct js_task *tctx;
	u64 now = bpf_ktime_get_ns();

	starvation_guard(now);
	if (scx_bpf_dsq_move_to_local(AGED_DSQ))
		return;

	/*
	 * prev's slice ended but it is not back on the DSQ yet (the kernel
	 * enqueues it after this call). If it still has the best key, keep it
	 * on the CPU rather than hand the CPU to a worse task.
	 */
	if (schedcp_prev_runnable(prev) &&
	    bpf_ksym_exists(scx_bpf_task_set_slice) &&
	    (tctx = bpf_task_storage_get(&task_ctx, prev, 0, 0))) {
		head = scx_bpf_dsq_peek(PRIO_DSQ);
		if (!head || size_key(prev, tctx, now) <= head->scx.dsq_vtime) {
			schedcp_keep_running(prev, slice_ns, &nr_kept_running);
			return;
		}
	}
	schedcp_move_to_local(PRIO_DSQ, &nr_dispatched);
}

SEC("struct_ops/jobsize_running")
void BPF_PROG(jobsize_running, struct task_struct *p)
{
	struct js_task *tctx = bpf_task_storage_get(&task_ctx, p, 0, 0);
	u64 waited;

	if (!tctx || !tctx->enq_at)
		return;
	waited = bpf_ktime_get_ns() - tctx->enq_at;
	tctx->enq_at = 0;	/* count each wait once */
	if ((s64)waited > (s64)max_queue_wait_ns)
		max_queue_wait_ns = waited;	/* racy max: good enough for a stat */
}

SEC("struct_ops/jobsize_init_task")
s32 BPF_PROG(jobsize_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	return schedcp_init_task_storage(&task_ctx, p);
}

SEC("struct_ops/jobsize_exit_task")
void BPF_PROG(jobsize_exit_task, struct task_struct *p,
	      struct scx_exit_task_args *args)
{
	struct comm_key name = {};
	u64 ran, *avg;

	/* Learn from tasks that really ended, not from the policy's unload. */
	if (!learn_comm || args->cancelled)
		return;
	ran = p->se.sum_exec_runtime;
	bpf_probe_read_kernel(name.comm, sizeof(name.comm), p->comm);
	avg = bpf_map_lookup_elem(&comm_size, &name);
	if (avg)
		*avg = *avg - (*avg >> 2) + (ran >> 2);	/* EWMA, weight 1/4 */
	else
		bpf_map_update_elem(&comm_size, &name, &ran, BPF_NOEXIST);
}

/* Sleepable: creating DSQs allocates memory. */
SEC("struct_ops.s/jobsize_init")
s32 BPF_PROG(jobsize_init)
{
	s32 ret;

	ret = schedcp_create_dsq(PRIO_DSQ);
	if (ret)
		return ret;
	return schedcp_create_dsq(AGED_DSQ);
}

SEC("struct_ops/jobsize_exit")
void BPF_PROG(jobsize_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops jobsize_ops = {
	.select_cpu	= (void *)jobsize_select_cpu,
	.enqueue	= (void *)jobsize_enqueue,
	.dispatch	= (void *)jobsize_dispatch,
	.running	= (void *)jobsize_running,
	.init_task	= (void *)jobsize_init_task,
	.exit_task	= (void *)jobsize_exit_task,
	.init		= (void *)jobsize_init,
	.exit		= (void *)jobsize_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "jobsize",
};
