// SPDX-License-Identifier: GPL-2.0
/*
 * latency: boost tasks that wake often and run briefly; preempt CPU hogs for them.
 *
 * For every task we track how much CPU time it uses between waking up and
 * going back to sleep (its burst), and keep a moving average of that over its
 * last wakeups. A task whose average burst, and current burst, are both under
 * interactive_thresh_ns is interactive: request handlers, RPC workers, event
 * loops, pipes and sockets passing messages. Everything else is a CPU hog.
 *
 * Interactive tasks go to a high-priority queue (BOOST_DSQ) that every CPU
 * serves first, with a short slice, so a misjudged hog cannot hold a CPU for
 * long. When one wakes and no CPU is idle, we kick a CPU that is running a
 * hog (the one that has run longest) so it switches at once instead of at
 * the end of the hog's slice. Only a real hog, one that has run for
 * hog_min_burst_ns without sleeping: preempting tasks that do sleep (a
 * message sender between two full socket buffers) breaks up their batches
 * and costs more than it saves. And not when the wakeup is synchronous and
 * the waker is itself interactive (a pipe or socket partner about to block):
 * its CPU is about to free up. Hogs share a second queue (NORMAL_DSQ) in
 * first-come order with a long slice, which suits batch work.
 *
 * Interactive tasks could keep the boost queue busy for ever; so once the
 * oldest hog has waited hog_max_wait_ns it goes first. The NORMAL_DSQ is
 * ordered by enqueue time (a vtime queue with the time as key) so the head's
 * waiting time can be read from the head itself.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define BOOST_DSQ	0	/* interactive tasks, FIFO */
#define NORMAL_DSQ	1	/* CPU hogs, ordered by enqueue time */

/* CPUs we keep per-CPU state for; CPUs past this are never preempted. */
#define MAX_CPUS	1024

/*
 * Tunables, set by userspace between open and load.
 *
 * interactive_thresh_ns: a task is interactive while it runs less than this
 * per wakeup (moving average over its last wakeups, and its current burst).
 * Higher: more tasks get boosted, including heavier request handlers; lower:
 * only very short tasks do, and the boost stays worth more.
 */
const volatile u64 interactive_thresh_ns = 3000000;	/* 3 ms */

/*
 * boost_slice_ns: slice of an interactive task. Should cover a typical burst
 * (so a request finishes in one go) while staying short, so a task that
 * turns into a hog is demoted quickly.
 */
const volatile u64 boost_slice_ns = 3000000;	/* 3 ms */

/*
 * hog_slice_ns: slice of a CPU hog. Long slices mean fewer switches and warm
 * caches for batch work; interactive tasks do not wait for them to end
 * (preempt), but other hogs do.
 */
const volatile u64 hog_slice_ns = 20000000;	/* 20 ms */

/*
 * preempt: when an interactive task wakes and no CPU is idle, preempt a CPU
 * running a hog. Off: the task waits for the next slice end (at most
 * hog_slice_ns), which gives hogs more throughput and wakers more latency.
 */
const volatile bool preempt = true;

/*
 * hog_max_wait_ns: once the oldest queued hog has waited this long, CPUs
 * serve it before interactive tasks. Bounds how long a swarm of interactive
 * tasks can hold back batch work; the kernel ejects the policy when a task
 * waits 5 s.
 */
const volatile u64 hog_max_wait_ns = 100000000;	/* 100 ms */

/*
 * hog_min_burst_ns: a hog is preempted for a woken interactive task only
 * once it has run this long since it last slept. Pure CPU hogs never sleep
 * and always qualify; tasks that sleep between longer bursts (message
 * senders, pipe writers) keep their CPU and get their batch done. Lower:
 * more preemption; higher: interactive tasks wait for more kinds of work.
 */
const volatile u64 hog_min_burst_ns = 20000000;	/* 20 ms */

/* Stats, read by userspace from .bss. */
u64 nr_boosted;			/* interactive tasks queued or started */
u64 nr_hogs;			/* CPU hogs queued or started */
u64 nr_direct_dispatched;	/* waking tasks sent straight to an idle CPU */
u64 nr_preempt_kicks;		/* CPUs running a hog kicked for a woken task */
u64 nr_sync_no_kick;		/* sync wakeups by an interactive waker: no kick */
u64 nr_no_victim;		/* woken, nothing idle, no hog to preempt */
u64 nr_idle_kicks;		/* idle CPUs woken for a queued task */
u64 nr_boost_dispatched;	/* tasks a CPU took from the boost queue */
u64 nr_hog_dispatched;		/* tasks a CPU took from the hog queue */
u64 nr_starved_first;		/* hogs served first after hog_max_wait_ns */

static u32 nr_cpus SCHEDCP_STATE;		/* scx_bpf_nr_cpu_ids(), set in init */
static u64 starved_turn SCHEDCP_STATE;		/* alternates starving hogs with the boost queue */

/* Per task. */
struct lat_task {
	u64 run_start;	/* sum_exec_runtime when it last started running */
	u64 burst;	/* CPU time since it last woke up */
	u64 avg_burst;	/* moving average of burst at sleep, 1/4 new */
	u64 waiting_since; /* when it joined the hog queue and has not run since; 0: not waiting */
	bool boosted;	/* its class when it was last queued */
	bool sync_wake;	/* woken synchronously by an interactive task */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct lat_task);
} lat_tasks SEC(".maps");

/* Per CPU: is it running a hog, since when, and how long it has not slept. */
struct lat_cpu {
	u64 hog_since;		/* when the running hog started running */
	u64 burst_before;	/* its CPU time since it woke, before that */
	bool hog;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct lat_cpu);
} lat_cpus SEC(".maps");

static __always_inline struct lat_cpu *cpu_state(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&lat_cpus, &key);
}

/* Decide @p's class now, remember it, and return its slice. */
static __always_inline u64 classify(struct task_struct *p,
				    struct lat_task *tctx)
{
	u64 run;

	if (!tctx)
		return hog_slice_ns;
	run = tctx->avg_burst > tctx->burst ? tctx->avg_burst : tctx->burst;
	tctx->boosted = run < interactive_thresh_ns;
	if (tctx->boosted) {
		__sync_fetch_and_add(&nr_boosted, 1);
		return boost_slice_ns;
	}
	__sync_fetch_and_add(&nr_hogs, 1);
	return hog_slice_ns;
}

/* Is @c running a hog that has not slept for hog_min_burst_ns? */
static __always_inline bool real_hog(struct lat_cpu *c, u64 now)
{
	return c->hog && c->burst_before + (now - c->hog_since) >=
			 hog_min_burst_ns;
}

/*
 * Preempt a CPU @p may use that is running a hog: @p's own CPU if it is,
 * else the one whose hog has run longest.
 */
static __always_inline void kick_hog(struct task_struct *p)
{
	u64 oldest = (u64)-1, now = bpf_ktime_get_ns();
	struct lat_cpu *c;
	s32 cpu, victim = -1;
	u32 i;

	cpu = scx_bpf_task_cpu(p);
	c = cpu_state(cpu);
	if (c && real_hog(c, now) && bpf_cpumask_test_cpu(cpu, p->cpus_ptr)) {
		victim = cpu;
	} else {
		bpf_for(i, 0, nr_cpus) {
			c = cpu_state(i);
			if (!c || !real_hog(c, now) || c->hog_since >= oldest ||
			    !bpf_cpumask_test_cpu(i, p->cpus_ptr))
				continue;
			oldest = c->hog_since;
			victim = i;
		}
	}
	if (victim < 0) {
		__sync_fetch_and_add(&nr_no_victim, 1);
		return;
	}
	scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
	__sync_fetch_and_add(&nr_preempt_kicks, 1);
}

SEC("struct_ops/latency_select_cpu")
s32 BPF_PROG(latency_select_cpu, struct task_struct *p, s32 prev_cpu,
	     u64 wake_flags)
{
	struct lat_task *tctx;
	struct lat_cpu *c;
	bool is_idle = false;
	s32 cpu;

	tctx = bpf_task_storage_get(&lat_tasks, p, 0, 0);
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle) {
		/* Not schedcp_select_cpu_idle: classify only tasks started here. */
		schedcp_insert_local(p, classify(p, tctx), &nr_direct_dispatched);
		return cpu;
	}
	/*
	 * We run in the waker's context: this CPU's state says whether the
	 * waker is interactive. With a sync wakeup it is about to block.
	 */
	if (tctx) {
		c = cpu_state(bpf_get_smp_processor_id());
		tctx->sync_wake = (wake_flags & SCX_WAKE_SYNC) && c && !c->hog;
	}
	return cpu;
}

SEC("struct_ops/latency_enqueue")
void BPF_PROG(latency_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct lat_task *tctx;
	bool sync_wake;
	u64 slice;

	/*
	 * Kernel threads first, on the built-in global DSQ, which a CPU serves
	 * before it calls dispatch: they do the system's housekeeping, and the
	 * sched_ext watchdog's work runs on one. Behind a long queue of CPU hogs a
	 * kworker waited more than timeout_ms / 2 and the kernel ejected the
	 * policy ("watchdog failed to check in"; found by `schedcp verify`).
	 */
	if (p->flags & SCHEDCP_PF_KTHREAD) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, boost_slice_ns, enq_flags);
		return;
	}
	tctx = bpf_task_storage_get(&lat_tasks, p, 0, 0);
	if (!tctx) {
		scx_bpf_dsq_insert_vtime(p, NORMAL_DSQ, hog_slice_ns,
					 bpf_ktime_get_ns(), enq_flags);
		return;
	}
	sync_wake = tctx->sync_wake;
	tctx->sync_wake = false;
	slice = classify(p, tctx);
	if (!tctx->boosted) {
		/*
		 * Keyed by when it started waiting, kept when a waiting hog is
		 * dequeued and enqueued again (its nice, policy or affinity
		 * changed): else it went back to the tail each time.
		 */
		if (!tctx->waiting_since)
			tctx->waiting_since = bpf_ktime_get_ns();
		scx_bpf_dsq_insert_vtime(p, NORMAL_DSQ, slice,
					 tctx->waiting_since, enq_flags);
		schedcp_kick_idle(p, &nr_idle_kicks);
		return;
	}

	scx_bpf_dsq_insert(p, BOOST_DSQ, slice, enq_flags);
	if (schedcp_kick_idle(p, &nr_idle_kicks) || !preempt ||
	    !(enq_flags & SCX_ENQ_WAKEUP))
		return;
	if (sync_wake) {
		__sync_fetch_and_add(&nr_sync_no_kick, 1);
		return;
	}
	kick_hog(p);
}

/* Has the oldest queued hog waited hog_max_wait_ns? */
static __always_inline bool hogs_starving(void)
{
	static u64 hog_served_at SCHEDCP_STATE;	/* fallback without scx_bpf_dsq_peek */
	struct task_struct *head;
	u64 now = bpf_ktime_get_ns();

	if (bpf_ksym_exists(scx_bpf_dsq_peek)) {
		head = scx_bpf_dsq_peek(NORMAL_DSQ);
		return head && now - head->scx.dsq_vtime > hog_max_wait_ns;
	}
	if (!scx_bpf_dsq_nr_queued(NORMAL_DSQ)) {
		hog_served_at = now;
		return false;
	}
	if (now - hog_served_at <= hog_max_wait_ns)
		return false;
	hog_served_at = now;
	return true;
}

SEC("struct_ops/latency_dispatch")
void BPF_PROG(latency_dispatch, s32 cpu, struct task_struct *prev)
{
	struct lat_task *tctx;

	/*
	 * Starving hogs go first, but only every other time: under a sustained
	 * overload the oldest hog always waits longer than hog_max_wait_ns, and
	 * serving hogs first every time starved the boost queue instead (the
	 * kernel ejected the policy under `schedcp verify`'s stress).
	 */
	if (hogs_starving() && !(__sync_fetch_and_add(&starved_turn, 1) & 1) &&
	    schedcp_move_to_local(NORMAL_DSQ, &nr_hog_dispatched)) {
		__sync_fetch_and_add(&nr_starved_first, 1);
		return;
	}
	if (schedcp_move_to_local(BOOST_DSQ, &nr_boost_dispatched) ||
	    schedcp_move_to_local(NORMAL_DSQ, &nr_hog_dispatched))
		return;
	/*
	 * Nothing waits: @prev runs on. With the slice of its class, not the
	 * kernel's 20 ms default.
	 */
	if (schedcp_prev_runnable(prev)) {
		tctx = bpf_task_storage_get(&lat_tasks, prev, 0, 0);
		schedcp_set_slice(prev, tctx && tctx->boosted ?
					boost_slice_ns : hog_slice_ns);
	}
}

SEC("struct_ops/latency_running")
void BPF_PROG(latency_running, struct task_struct *p)
{
	struct lat_task *tctx;
	struct lat_cpu *c;

	tctx = bpf_task_storage_get(&lat_tasks, p, 0, 0);
	if (!tctx)
		return;
	tctx->run_start = p->se.sum_exec_runtime;
	tctx->waiting_since = 0;

	c = cpu_state(scx_bpf_task_cpu(p));
	if (c) {
		c->hog = !tctx->boosted;
		c->hog_since = bpf_ktime_get_ns();
		c->burst_before = tctx->burst;
	}
}

SEC("struct_ops/latency_stopping")
void BPF_PROG(latency_stopping, struct task_struct *p, bool runnable)
{
	struct lat_task *tctx;
	struct lat_cpu *c;

	c = cpu_state(scx_bpf_task_cpu(p));
	if (c)
		c->hog = false;

	tctx = bpf_task_storage_get(&lat_tasks, p, 0, 0);
	if (tctx)
		tctx->burst += p->se.sum_exec_runtime - tctx->run_start;
}

SEC("struct_ops/latency_quiescent")
void BPF_PROG(latency_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct lat_task *tctx;

	if (!(deq_flags & SCX_DEQ_SLEEP))
		return;
	tctx = bpf_task_storage_get(&lat_tasks, p, 0, 0);
	if (!tctx)
		return;
	/* The burst ends when the task sleeps: fold it into the average. */
	tctx->avg_burst = tctx->avg_burst - (tctx->avg_burst >> 2) +
			  (tctx->burst >> 2);
	tctx->burst = 0;
}

SEC("struct_ops/latency_init_task")
s32 BPF_PROG(latency_init_task, struct task_struct *p,
	     struct scx_init_task_args *args)
{
	/* New tasks start interactive (no history yet): a zeroed record. */
	return schedcp_init_task_storage(&lat_tasks, p);
}

/* Sleepable: creating DSQs allocates memory. */
SEC("struct_ops.s/latency_init")
s32 BPF_PROG(latency_init)
{
	s32 ret;

	nr_cpus = schedcp_nr_cpus(MAX_CPUS);
	ret = schedcp_create_dsq(BOOST_DSQ);
	if (ret)
		return ret;
	return schedcp_create_dsq(NORMAL_DSQ);
}

SEC("struct_ops/latency_exit")
void BPF_PROG(latency_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops latency_ops = {
	.select_cpu	= (void *)latency_select_cpu,
	.enqueue	= (void *)latency_enqueue,
	.dispatch	= (void *)latency_dispatch,
	.running	= (void *)latency_running,
	.stopping	= (void *)latency_stopping,
	.quiescent	= (void *)latency_quiescent,
	.init_task	= (void *)latency_init_task,
	.init		= (void *)latency_init,
	.exit		= (void *)latency_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "latency",
};
