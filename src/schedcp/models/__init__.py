"""Records that cross package boundaries: pydantic models, never bare dicts.

They live at the bottom of the layers (docs/architecture.md) so that every capability can
hand them to another without importing it: the repository stores a `BenchResult` without
importing the benchmark harness, and a `WorkloadProfile` without importing the analysis
engine. `vocabulary` holds the names every layer must agree on (workload classes, sizes).
"""

from schedcp.models.run import BootInfo, CommandResult

__all__ = ["BootInfo", "CommandResult"]
