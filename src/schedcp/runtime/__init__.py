"""Run policies: attach, watch, detach, and report what the kernel did."""
