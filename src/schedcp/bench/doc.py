"""Render docs/benchmarks.md from the workload registry, so every workload is documented as defined."""

from __future__ import annotations

from schedcp.bench.registry import all_workloads
from schedcp.bench.variants import long_tail_variants

HEADER = """# Benchmarks

Generated from the workload definitions by `python -m schedcp.bench.doc > docs/benchmarks.md`;
a test fails when this file is out of date.

## Method

`schedcp bench run WORKLOAD --policy NAME [--set tunable=value ...] [--baseline default] [--repeat N]
[--size S] [--plot]` boots one sandbox and runs the workload under the baseline (the kernel's
default scheduler, EEVDF, unless `--baseline` names a policy) and the candidate alternately:
a warm-up round of each (discarded), then N rounds of A B. For each metric it reports the
median, minimum and maximum of each side, the ratio median(candidate) / median(baseline), and
a 95% percentile-bootstrap interval of that ratio (each side resampled independently, 5000
resamples, fixed seed). A ratio whose interval crosses 1 is "not significant"; with one run a
side there is no interval. Because the direction differs by metric, the verdict ("better" /
"worse") and `gain` (> 1 means the candidate is better) take it into account.

Every candidate run goes through the same path as `schedcp policy run`: the policy is attached
before the run and detached after it, the kernel's state is checked after the run and recorded
in the sample (`scheduler_after_run`, e.g. `enabled:fifo`), and the policy's counters are kept.
If the kernel ejects the policy during a run the benchmark stops with the kernel's reason (exit
status 3): an ejection is never reported as a slow run. A workload that fails, times out or
prints something unparsable stops the benchmark with its output.

The sandbox on our machines runs under software emulation (TCG). Absolute times there are not
the workload's speed on real hardware and are never reported as such; only ratios measured in
the same boot are compared. Default sizes finish in about a minute per run in the 2-vCPU
emulated sandbox; `--size large` / `full` are for real hosts.

Results are written as JSON (a `BenchResult` record: workload definition and version, sizes,
both schedulers with tunables and object hash, boot info, every sample, the summaries) to
`~/.local/share/schedcp/results/` (or `--output`), and with `--plot` as a PNG beside it.

## Workloads
"""


def render() -> str:
    parts = [HEADER]
    for w in all_workloads().values():
        info = w.info
        parts.append(f"\n### `{info.name}` (v{info.version})\n\n{info.summary}\n")
        parts.append(f"- class: `{info.workload_class}`")
        parts.append(
            "- sizes: " + ", ".join(f"`{s}`" + (" (default)" if s == info.default_size else "") for s in info.sizes)
        )
        parts.append(f"- primary metric: `{info.primary}`\n")
        parts.append("| metric | unit | better | meaning |\n|---|---|---|---|")
        for m in info.metrics:
            parts.append(f"| `{m.name}` | {m.unit} | {m.better} | {m.description} |")
    parts.append(VARIANTS_HEADER)
    for v in long_tail_variants(1, 8):
        parts.append(f"| `{v.name}` | {v.describe()} |")
    return "\n".join(parts) + "\n"


VARIANTS_HEADER = """
## Generated variants

A policy tuned until it wins on the benchmarks above proves little: their long-tail batches tag
every job with its size and always start the long job last, and a policy can fit exactly that.
Generated variants change what a policy could have fitted: the program, the number of short
jobs, one to three long jobs and their size, where the long jobs are in the start order, and no
name tags. They are deterministic per seed (`schedcp.bench.variants`), run by name like any
workload (`bench run long-tail-v1-3`), listed with `bench list --variants batch-long-tail
[--seed N] [--count N]` and run as a set with `bench suite --policy P --variants
batch-long-tail`. Sizes tiny, small (default) and medium set the work per job (the program's
own unit at that size). Messaging and wakeup-latency variants are planned (issue 13).

The first eight of seed 1:

| workload | batch |
|---|---|"""


if __name__ == "__main__":
    print(render(), end="")
