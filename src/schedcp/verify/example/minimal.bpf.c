// SPDX-License-Identifier: GPL-2.0
/*
 * minimal: the smallest policy that passes every stage of `schedcp verify`;
 * the starting point the MCP server's write_policy prompt hands to an agent.
 *
 * One shared DSQ in arrival order. A waking task that finds an idle CPU runs
 * there at once (schedcp_select_cpu_idle); every other task joins the queue,
 * and a CPU that runs out of work takes its head. Kernel threads go first (the
 * built-in global DSQ, served before dispatch): the kernel's housekeeping,
 * the sched_ext watchdog's included, must never wait behind CPU hogs.
 */
#include "schedcp.bpf.h"
#include "schedcp_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

/* How long a task runs before the next one gets the CPU (set by userspace). */
const volatile u64 slice_ns = 5000000;

u64 nr_enqueued;	/* tasks put on the shared DSQ */
u64 nr_direct;		/* waking tasks sent straight to an idle CPU */

SEC("struct_ops/minimal_select_cpu")
s32 BPF_PROG(minimal_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return schedcp_select_cpu_idle(p, prev_cpu, wake_flags, true, slice_ns, &nr_direct);
}

SEC("struct_ops/minimal_enqueue")
void BPF_PROG(minimal_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (p->flags & SCHEDCP_PF_KTHREAD) {
		scx_bpf_dsq_insert(p, SCX_DSQ_GLOBAL, slice_ns, enq_flags);
		return;
	}
	scx_bpf_dsq_insert(p, SHARED_DSQ, slice_ns, enq_flags);
	__sync_fetch_and_add(&nr_enqueued, 1);
}

SEC("struct_ops/minimal_dispatch")
void BPF_PROG(minimal_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

/* Sleepable: creating a DSQ allocates memory. */
SEC("struct_ops.s/minimal_init")
s32 BPF_PROG(minimal_init)
{
	return schedcp_create_dsq(SHARED_DSQ);
}

SEC("struct_ops/minimal_exit")
void BPF_PROG(minimal_exit, struct scx_exit_info *ei)
{
	schedcp_record_exit(ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops minimal_ops = {
	.select_cpu	= (void *)minimal_select_cpu,
	.enqueue	= (void *)minimal_enqueue,
	.dispatch	= (void *)minimal_dispatch,
	.init		= (void *)minimal_init,
	.exit		= (void *)minimal_exit,
	/* Eject a stall after 5 s rather than the kernel's default 30 s. */
	.timeout_ms	= 5000,
	.name		= "minimal",
};
