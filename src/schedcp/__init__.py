"""schedcp: an agentic control plane for Linux CPU schedulers built on sched_ext."""

__version__ = "0.1.0"
