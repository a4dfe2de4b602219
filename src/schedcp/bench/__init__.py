"""Benchmarks: real workloads and an A/B harness that runs them under any policy in the sandbox."""
