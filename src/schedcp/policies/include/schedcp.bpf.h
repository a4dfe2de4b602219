/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedcp.bpf.h - the one header every schedcp policy includes.
 *
 * Include this instead of vmlinux.h, and before anything else: it decides how
 * vmlinux.h is read (see BPF_NO_KFUNC_PROTOTYPES below).
 *
 * Written for the sched_ext API of Linux 7.3. The kfunc list and prototypes
 * come from that kernel's BTF (shared/data/kfuncs-7.3.4.txt); another kernel
 * may rename or drop some, and the load then fails with a libbpf message
 * naming the missing kfunc.
 */
#ifndef SCHEDCP_BPF_H
#define SCHEDCP_BPF_H

/*
 * bpftool >= 7.5 also writes kfunc prototypes into vmlinux.h. We declare the
 * ones we use ourselves below, so that a vmlinux.h from any bpftool version
 * builds the same and cannot disagree with us about a prototype.
 */
#ifndef BPF_NO_KFUNC_PROTOTYPES
#define BPF_NO_KFUNC_PROTOTYPES
#endif

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* NUMA_NO_NODE is a macro, so it is not in vmlinux.h. */
#define SCHEDCP_ANY_NODE (-1)

/*
 * Userspace reports every .bss variable as a stat. Put a policy's internal
 * globals (per-CPU bookkeeping, timestamps) in .data instead:
 *   static u64 last_scan_ns SCHEDCP_STATE;
 */
#define SCHEDCP_STATE SEC(".data")

/*
 * sched_ext kfuncs.
 *
 * Some of these take a hidden trailing `const struct bpf_prog_aux *` in the
 * kernel source; the verifier fills it in, so it is left out here and at
 * every call site.
 *
 * The ones every policy needs are strong: if they are missing, the load fails
 * early with a message naming the kfunc. The optional ones are __weak, so a
 * policy can test them with bpf_ksym_exists() and do without.
 */

/* Dispatch queues (DSQs). User DSQ ids must not have bit 63 set. */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
void scx_bpf_destroy_dsq(u64 dsq_id) __ksym;
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice,
			u64 enq_flags) __ksym;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice,
			      u64 vtime, u64 enq_flags) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
struct task_struct *scx_bpf_dsq_peek(u64 dsq_id) __ksym __weak;

/* Walking a DSQ (front to back; SCX_DSQ_ITER_REV for back to front) and
 * moving the task at the cursor to another DSQ, e.g. a remote CPU's local
 * DSQ (from ops.dispatch, or from a BPF timer: no rq lock held). */
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id,
			 u64 flags) __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;
bool scx_bpf_dsq_move(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
		      u64 dsq_id, u64 enq_flags) __ksym;
void scx_bpf_dsq_move_set_slice(struct bpf_iter_scx_dsq *it__iter,
				u64 slice) __ksym;

/* CPU selection and idle tracking. */
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
s32 scx_bpf_pick_any_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask(void) __ksym;
void scx_bpf_put_idle_cpumask(const struct cpumask *idle_mask) __ksym;

/* Task, CPU and time queries. */
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
bool scx_bpf_task_running(const struct task_struct *p) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
u64 scx_bpf_now(void) __ksym __weak;
struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;

/* Setting a task's slice and vtime (older kernels: write p->scx.* directly). */
bool scx_bpf_task_set_slice(struct task_struct *p, u64 slice) __ksym __weak;
bool scx_bpf_task_set_dsq_vtime(struct task_struct *p, u64 vtime) __ksym __weak;

/* Generic BPF kfuncs (not sched_ext's) that policies use. */
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
bool bpf_cpumask_empty(const struct cpumask *cpumask) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
struct cgroup *bpf_cgroup_from_id(u64 cgid) __ksym;

/* CPU frequency hints; only meaningful with the schedutil governor. */
u32 scx_bpf_cpuperf_cap(s32 cpu) __ksym __weak;
u32 scx_bpf_cpuperf_cur(s32 cpu) __ksym __weak;
void scx_bpf_cpuperf_set(s32 cpu, u32 perf) __ksym __weak;

/* Aborting the policy; use scx_error() / scx_exit() below, not these. */
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
void scx_bpf_exit_bstr(s64 exit_code, char *fmt, unsigned long long *data,
		       u32 data__sz) __ksym;

/*
 * The *_bstr kfuncs take a format string plus its arguments packed into an
 * array of u64 (at most 12, as with bpf_seq_printf). This packs them.
 *
 * The format goes into a writable static array (.data), not a string literal
 * in .rodata: the fmt parameter is a plain `char *`, and the verifier checks
 * such kfunc memory arguments for write access as well as read access, which
 * a frozen .rodata map fails.
 */
#define ___schedcp_pack_bstr(fmt, args...)				\
	static char ___sc_fmt[] = fmt;					\
	unsigned long long ___sc_args[___bpf_narg(args)];		\
	/* lets %s / %p arguments be passed as pointers */		\
	_Pragma("GCC diagnostic push")					\
	_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")		\
	___bpf_fill(___sc_args, args);					\
	_Pragma("GCC diagnostic pop")

/*
 * scx_error(fmt, args...): disable the policy now with a formatted reason.
 * The kernel falls back to its own scheduler and reports kind
 * SCX_EXIT_ERROR_BPF with the message in scx_exit_info.msg.
 */
#define scx_error(fmt, args...)						\
	({								\
		___schedcp_pack_bstr(fmt, ##args);			\
		scx_bpf_error_bstr(___sc_fmt, ___sc_args,		\
				   sizeof(___sc_args));			\
	})

/* scx_exit(code, fmt, args...): a deliberate exit, with an exit code. */
#define scx_exit(code, fmt, args...)					\
	({								\
		___schedcp_pack_bstr(fmt, ##args);			\
		scx_bpf_exit_bstr((code), ___sc_fmt, ___sc_args,	\
				  sizeof(___sc_args));			\
	})

/*
 * Why the kernel disabled the policy.
 *
 * The kernel passes struct scx_exit_info to ops.exit only for the duration of
 * the call, and its strings are kernel pointers, so a policy's exit callback
 * copies what matters into this .bss variable with schedcp_record_exit().
 * Userspace reads it from the .bss map after the scheduler is gone.
 *
 * ops.exit returns before the kernel reports the scheduler as disabled, so
 * once /sys/kernel/sched_ext/state says "disabled" the record is complete.
 * kind == SCX_EXIT_NONE (0) means exit never ran: nothing recorded.
 */
#define SCHEDCP_EXIT_STR_LEN 128

struct schedcp_exit_info {
	u32 kind;	/* enum scx_exit_kind, e.g. SCX_EXIT_ERROR_STALL */
	s32 exit_cpu;	/* CPU that triggered the exit */
	s64 exit_code;	/* from scx_exit(), or SCX_ECODE_* set by the kernel */
	char reason[SCHEDCP_EXIT_STR_LEN];	/* e.g. "runnable task stall" */
	char msg[SCHEDCP_EXIT_STR_LEN];	/* details, e.g. which task stalled */
};

struct schedcp_exit_info schedcp_exit_info;

static __always_inline void schedcp_record_exit(struct scx_exit_info *ei)
{
	schedcp_exit_info.kind = ei->kind;
	schedcp_exit_info.exit_cpu = ei->exit_cpu;
	schedcp_exit_info.exit_code = ei->exit_code;
	bpf_probe_read_kernel_str(schedcp_exit_info.reason,
				  sizeof(schedcp_exit_info.reason), ei->reason);
	bpf_probe_read_kernel_str(schedcp_exit_info.msg,
				  sizeof(schedcp_exit_info.msg), ei->msg);
}

#endif /* SCHEDCP_BPF_H */
