// SPDX-License-Identifier: GPL-2.0
/*
 * sched_trace: how the tasks of one workload use the CPU, accumulated per process name.
 *
 * Only tasks whose tgid is in `tracked` are counted. Userspace seeds that map (the command's
 * pid, an attached pid and its descendants, or a cgroup's processes) and the tracer grows it:
 * a new process forked by a tracked one is tracked too. A thread group leaves the map when
 * its leader's task_struct is freed, so a recycled pid is never mistaken for the workload.
 *
 * What is measured, per comm (struct comm_stats):
 *   runq      run-queue latency: from wakeup (sched_wakeup/_new: the task is on a run queue),
 *             or from being preempted while still runnable, to being switched in (sched_switch
 *             next)
 *   run       run length: switch-in to switch-out; its sum is the CPU time seen by the tracer
 *   job_cpu   at exit: the thread's whole CPU time (se.sum_exec_runtime)
 *   job_life  at exit: the thread's lifetime (now - start_time)
 *   counters  voluntary/involuntary switches, migrations, wakeups, forks, execs, exits, tasks
 * plus `wake_pairs` (waker comm, wakee comm) -> count, recorded at sched_waking in the waker's
 * context, and `exited` (one record per finished thread, exact job sizes for the skew
 * estimate; bounded, the histograms are not).
 *
 * Where each thing is counted, and why there: the kernel skips a tracing program that is
 * already running on the CPU (it counts a "recursion miss"). Programs on tracepoints hit in
 * plain process context (sched_process_fork, _exec, _exit) can be preempted halfway on the
 * sandbox's 7.3 kernel, and another task reaching the same tracepoint on that CPU is then
 * missed: we measured 20-50% of sched_process_exit runs missed for perf's messaging benchmark
 * under emulation. So everything that must not be lost is counted where the kernel holds a
 * lock with interrupts off and cannot be preempted:
 *   fork (tracking the child, forks)   sched_wakeup_new, in the parent's context right after fork
 *   exit (exits, job sizes)            sched_switch with prev_state TASK_DEAD: the task's last
 *                                      switch-out, when its CPU time is final
 *   leaving `tracked`                  sched_process_free of the group leader (an RCU callback)
 * Only execs are counted on sched_process_exec (no better hook); a miss there is reported by
 * userspace from the programs' recursion_misses.
 *
 * Cost: sched_switch, sched_waking and sched_wakeup fire for every task on the machine, so the
 * path for an untracked task is one hash lookup on a u32 and out. Per-task timestamps live in task
 * storage (no hash, no cleanup: they die with the task).
 *
 * Per-CPU maps rather than atomic adds: a workload's threads of one name run on many CPUs at
 * once (64 server threads are all "nginx"), so one shared value per comm would bounce its
 * cache line between CPUs on every event and every add would be a locked instruction. A
 * per-CPU value is touched by one CPU only, and the programs that update it run to completion
 * there (interrupts off), so plain adds are exact; userspace sums the CPUs when it reads the
 * maps. The exception is sched_process_exec, which can be preempted mid-update by a switch on
 * its CPU: its (rare) adds are atomic. The price is memory (values x CPUs), hence no
 * preallocation and bounded entries.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define COMM_LEN 16
/* Bucket b holds durations in [2^(b-1), 2^b) ns (bucket 0: 0 ns); the last one is open-ended.
 * 2^40 ns is about 18 minutes, longer than any job we time slice by slice. */
#define NBUCKETS 41
#define MAX_TGIDS 65536
#define MAX_COMMS 1024
#define MAX_PAIRS 4096
#define MAX_EXITED 16384
#define TASK_RUNNING 0
#define E2BIG 7 /* map full; -EEXIST just means another CPU created the entry first */

struct hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slots[NBUCKETS];
};

struct comm_stats {
	struct hist runq;
	struct hist run;
	struct hist job_cpu;
	struct hist job_life;
	__u64 voluntary;
	__u64 involuntary;
	__u64 migrations;
	__u64 wakeups;
	__u64 wakeups_new;
	__u64 forks;
	__u64 execs;
	__u64 exits;
	__u64 tasks; /* threads first seen under this name (or renamed to it by exec) */
};

struct comm_key {
	char comm[COMM_LEN];
};

struct pair_key {
	char waker[COMM_LEN];
	char wakee[COMM_LEN];
};

struct exited_rec {
	char comm[COMM_LEN];
	__u32 tgid;
	__u32 pad;
	__u64 cpu_ns;
	__u64 life_ns;
};

/* Per-task state: when the task became runnable / started running (0: not known). */
struct task_ts {
	__u64 queued_ns;
	__u64 run_ns;
	__u32 seen;
	__u32 pad;
};

/* Things the tracer had to drop because a map was full; userspace reports them. */
struct drops {
	__u64 tracked_full;
	__u64 comms_full;
	__u64 pairs_full;
	__u64 exited_full;
	__u64 no_task_storage;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TGIDS);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ts);
} task_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_COMMS);
	__type(key, struct comm_key);
	__type(value, struct comm_stats);
} comm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_PAIRS);
	__type(key, struct pair_key);
	__type(value, __u64);
} wake_pairs SEC(".maps");

/* Exits are rare next to switches: a shared hash keyed by tid, no per-CPU copies needed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_EXITED);
	__type(key, __u32);
	__type(value, struct exited_rec);
} exited SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct drops);
} drops SEC(".maps");

/* A zeroed value to create comm_stats entries from; too big for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct comm_stats);
} zero_stats SEC(".maps");

static __always_inline struct drops *drops_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&drops, &zero);
}

/* The value of a tracked tgid; TASK_DEAD: prev_state of a task's final switch-out. */
#define TRACKED 1
#define TASK_DEAD 0x80

static __always_inline bool is_tracked(struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	return bpf_map_lookup_elem(&tracked, &tgid) != NULL;
}

/* task->comm as a map key: two 8-byte loads through the trusted tp_btf pointer, cheaper than
 * a string-copy helper on every event. The kernel zero-pads comm (strscpy_pad), so the bytes
 * after the name are zeros and equal names give equal keys. */
static __always_inline void comm_of(char *dst, struct task_struct *p)
{
	__builtin_memcpy(dst, p->comm, COMM_LEN);
}

/* floor(log2(v)) + 1 for v > 0, 0 for v == 0, capped at the last bucket; no loops. */
static __always_inline __u32 bucket_of(__u64 v)
{
	__u32 b = 0;

	if (!v)
		return 0;
	if (v >> 32) { v >>= 32; b += 32; }
	if (v >> 16) { v >>= 16; b += 16; }
	if (v >> 8) { v >>= 8; b += 8; }
	if (v >> 4) { v >>= 4; b += 4; }
	if (v >> 2) { v >>= 2; b += 2; }
	if (v >> 1) { b += 1; }
	b += 1;
	return b < NBUCKETS ? b : NBUCKETS - 1;
}

static __always_inline void hist_add(struct hist *h, __u64 ns)
{
	__u32 b = bucket_of(ns);

	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	if (b < NBUCKETS) /* for the verifier */
		h->slots[b]++;
}

static __always_inline bool same_comm(struct task_struct *a, struct task_struct *b)
{
	__u64 x[2], y[2];

	__builtin_memcpy(x, a->comm, COMM_LEN);
	__builtin_memcpy(y, b->comm, COMM_LEN);
	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline struct comm_stats *stats_for(struct task_struct *p)
{
	struct comm_key key = {};
	struct comm_stats *s;
	struct drops *d;
	__u32 zero = 0;

	comm_of(key.comm, p);
	s = bpf_map_lookup_elem(&comm_stats, &key);
	if (s)
		return s;
	s = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!s)
		return NULL;
	/* BPF_NOEXIST: another CPU may have created it meanwhile; either way look it up again. */
	if (bpf_map_update_elem(&comm_stats, &key, s, BPF_NOEXIST) == -E2BIG && (d = drops_get()))
		d->comms_full++;
	return bpf_map_lookup_elem(&comm_stats, &key);
}

static __always_inline struct task_ts *ts_for(struct task_struct *p, struct comm_stats *s)
{
	struct task_ts *ts;
	struct drops *d;

	ts = bpf_task_storage_get(&task_ts, p, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts) {
		if ((d = drops_get()))
			d->no_task_storage++;
		return NULL;
	}
	if (!ts->seen) {
		ts->seen = 1;
		if (s)
			s->tasks++;
	}
	return ts;
}

static __always_inline void on_wakeup(struct task_struct *p, bool new_task)
{
	struct comm_stats *s;
	struct task_ts *ts;

	if (!is_tracked(p))
		return;
	s = stats_for(p);
	ts = ts_for(p, s);
	if (ts && !ts->queued_ns)
		ts->queued_ns = bpf_ktime_get_ns();
	if (s) {
		if (new_task)
			s->wakeups_new++;
		else
			s->wakeups++;
	}
}

/*
 * Who woke the task. sched_waking fires at the start of try_to_wake_up(), in the waker's
 * context; sched_wakeup fires where the task is put on a run queue, which for a wakeup of a
 * task on another CPU is often that CPU, from the wakeup IPI: there the current task is
 * whatever that CPU was running, usually its idle task (82% of perf pipe's wakeups on our
 * 2-CPU host named `swapper/N` as the waker). Every sched_waking is followed by one
 * sched_wakeup (also when the task is still queued, ttwu_runnable), so the pair counts add up
 * to the wakeups. A wakeup from an interrupt still shows the interrupted task (the idle task
 * when the CPU was idle): there is no cheap, portable in-interrupt test.
 */
SEC("tp_btf/sched_waking")
int BPF_PROG(st_waking, struct task_struct *p)
{
	struct task_struct *waker = bpf_get_current_task_btf();
	struct pair_key key = {};
	__u64 one = 1, *n;
	struct drops *d;

	if (!is_tracked(p))
		return 0;
	comm_of(key.waker, waker);
	comm_of(key.wakee, p);
	n = bpf_map_lookup_elem(&wake_pairs, &key);
	if (n)
		(*n)++;
	else if (bpf_map_update_elem(&wake_pairs, &key, &one, BPF_NOEXIST) == -E2BIG && (d = drops_get()))
		d->pairs_full++;
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(st_wakeup, struct task_struct *p)
{
	on_wakeup(p, false);
	return 0;
}

/* A new task's first wakeup, in its parent's context right after fork (see the top). */
SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(st_wakeup_new, struct task_struct *p)
{
	struct task_struct *parent = bpf_get_current_task_btf();
	struct comm_stats *s;
	__u32 tgid, parent_tgid;
	__u8 one = TRACKED;
	struct drops *d;

	parent_tgid = BPF_CORE_READ(parent, tgid);
	if (bpf_map_lookup_elem(&tracked, &parent_tgid)) {
		s = stats_for(parent);
		if (s)
			s->forks++;
		tgid = BPF_CORE_READ(p, tgid);
		/* A new thread shares its parent's tgid, which is tracked already. */
		if (tgid != parent_tgid && bpf_map_update_elem(&tracked, &tgid, &one, BPF_ANY) && (d = drops_get()))
			d->tracked_full++;
	}
	on_wakeup(p, true);
	return 0;
}

/* A task's final switch-out: its CPU time is final and it will never run again. */
static __always_inline void on_exit(struct task_struct *p, struct comm_stats *s, __u64 now)
{
	__u64 cpu_ns = BPF_CORE_READ(p, se.sum_exec_runtime);
	__u64 life_ns = now - BPF_CORE_READ(p, start_time);
	struct exited_rec rec = {};
	struct drops *d;
	__u32 tid;

	if (s) {
		s->exits++;
		hist_add(&s->job_cpu, cpu_ns);
		hist_add(&s->job_life, life_ns);
	}
	tid = BPF_CORE_READ(p, pid);
	comm_of(rec.comm, p);
	rec.tgid = BPF_CORE_READ(p, tgid);
	rec.cpu_ns = cpu_ns;
	rec.life_ns = life_ns;
	if (bpf_map_update_elem(&exited, &tid, &rec, BPF_ANY) && (d = drops_get()))
		d->exited_full++;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(st_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	struct comm_stats *s, *prev_s = NULL;
	struct task_ts *ts;
	__u64 now = 0;

	if (is_tracked(prev)) {
		now = bpf_ktime_get_ns();
		s = prev_s = stats_for(prev);
		ts = ts_for(prev, s);
		/* Still runnable (preempted, or yielded): waits in the run queue from now on. */
		bool runnable = preempt || prev_state == TASK_RUNNING;
		if (s) {
			if (runnable)
				s->involuntary++;
			else
				s->voluntary++;
		}
		if (ts) {
			if (ts->run_ns && s)
				hist_add(&s->run, now - ts->run_ns);
			ts->run_ns = 0;
			ts->queued_ns = runnable ? now : 0;
		}
		if (prev_state == TASK_DEAD)
			on_exit(prev, s, now);
	}
	if (is_tracked(next)) {
		if (!now)
			now = bpf_ktime_get_ns();
		/* Partners in a pipeline often share a name: save the second hash lookup. */
		s = prev_s && same_comm(prev, next) ? prev_s : stats_for(next);
		ts = ts_for(next, s);
		if (ts) {
			if (ts->queued_ns && s)
				hist_add(&s->runq, now - ts->queued_ns);
			ts->queued_ns = 0;
			ts->run_ns = now;
		}
	}
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(st_migrate, struct task_struct *p, int dest_cpu)
{
	struct comm_stats *s;

	if (!is_tracked(p))
		return 0;
	s = stats_for(p);
	if (s)
		s->migrations++;
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(st_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct comm_stats *s;

	if (!is_tracked(p))
		return 0;
	s = stats_for(p); /* the new name: comm is set before this tracepoint */
	if (s) {
		/* Preemptible here (see the top): a switch on this CPU may update the same value. */
		__sync_fetch_and_add(&s->execs, 1);
		__sync_fetch_and_add(&s->tasks, 1);
	}
	return 0;
}

/* The task_struct is being freed (RCU callback): for a group leader, the whole group is gone. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(st_free, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (BPF_CORE_READ(p, pid) == tgid)
		bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}
