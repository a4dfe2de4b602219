"""The built-in sched_ext policy library (package data): one folder per policy, plus include/."""
