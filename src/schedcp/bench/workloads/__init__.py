"""The benchmark workloads, by name."""
