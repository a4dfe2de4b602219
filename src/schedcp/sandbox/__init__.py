"""Boot Debian's sched_ext kernel in a QEMU VM and run commands in it."""

from schedcp.sandbox.kernel import Kernel, find_kernel
from schedcp.sandbox.vm import Sandbox

__all__ = ["Kernel", "Sandbox", "find_kernel"]
