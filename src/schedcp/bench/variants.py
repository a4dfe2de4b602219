"""Workload variants no policy was tuned on, generated from a seed.

A policy tuned until it wins on our own benchmark proves little: the long-tail benchmarks tag
every job with its size (`lt_long_gzip`) and always fork the long job last, and a policy can fit
exactly that. The variants change what a policy could have fitted: the program, the number of
short jobs, one to three long jobs and how much longer they are, where the long jobs are in the
start order (first, last, middle, spread), and no name tags at all. They are generated from
parameters with a fixed seed, so `long-tail-v1-3` is the same batch on every machine and in
every run, and a result can be repeated.

Variant `long-tail-v<seed>-<index>` is entry `index` of `long_tail_variants(seed)`; any index is
valid (the list is an infinite deterministic sequence, cut at the count asked for).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from schedcp.bench.workload import Workload
from schedcp.bench.workloads.longtail import (
    GUEST_PYTHON,
    LongTailWorkload,
    Shape,
    longtail_workloads,
)
from schedcp.errors import SchedcpError
from schedcp.models.vocabulary import Size

ORDERS = ("last", "first", "middle", "spread")
LONG_TAIL_NAME = re.compile(r"^long-tail-v(?P<seed>\d{1,9})-(?P<index>\d{1,4})$")
# Shapes stay near the sandbox's tiny-to-small range so a variant set runs in minutes per policy
# under emulation: 10-40 short jobs, 1-3 long ones.
SHORT_RANGE = (10, 40)
LONG_CHOICES = (1, 1, 2, 3)


@dataclass(frozen=True)
class LongTailVariant:
    """One generated batch: which program, how many jobs of which sizes, in which order."""

    seed: int
    index: int
    family: str  # the driver's --variant: compress, checksum, sort, awk, compile, python
    short: int
    long: int
    factor: int
    order: str

    @property
    def name(self) -> str:
        return f"long-tail-v{self.seed}-{self.index}"

    def args(self) -> list[str]:
        return ["--long", str(self.long), "--order", self.order, "--no-tags"]

    def describe(self) -> str:
        where = {
            "last": "started last",
            "first": "started first",
            "middle": "started in the middle",
            "spread": "spread through the start order",
        }[self.order]
        longs = "one long job" if self.long == 1 else f"{self.long} long jobs"
        return f"{self.short} short {self.family} jobs and {longs} {self.factor}x as big, {where}; no name tags"


def long_tail_variants(seed: int = 1, count: int = 8, cpus: int = 2) -> list[LongTailVariant]:
    """The first `count` variants of `seed`: every program and every order comes round before any
    repeats, and the long jobs are about as big as makes their size matter on `cpus` CPUs (the
    gap between fair sharing and the bound is widest when the long work is N / (C - 1) short jobs)."""
    families = [w.variant for w in _families()]
    rng = random.Random(f"long-tail-variants:{seed}")
    programs: list[str] = []
    orders: list[str] = []
    out = []
    for index in range(count):
        if not programs:
            programs = rng.sample(families, len(families))
        if not orders:
            orders = rng.sample(ORDERS, len(ORDERS))
        short = rng.randint(*SHORT_RANGE)
        long = rng.choice(LONG_CHOICES)
        widest = short / max(cpus - 1, 1) / long
        factor = max(2, round(widest * rng.uniform(0.6, 1.4)))
        out.append(LongTailVariant(seed, index, programs.pop(), short, long, factor, orders.pop()))
    return out


def _families() -> list[LongTailWorkload]:
    return [w for w in longtail_workloads() if isinstance(w, LongTailWorkload)]


class LongTailVariantWorkload(LongTailWorkload):
    """A generated variant as a benchmark workload: the family's work per job at each size, the
    variant's shape, order and untagged names."""

    units: ClassVar[dict[Size, int]] = {}

    def __init__(self, spec: LongTailVariant) -> None:
        family = next(w for w in _families() if w.variant == spec.family)
        self.spec = spec
        self.variant = family.variant  # type: ignore[misc]  # per instance here, per class in the families
        self.tool = family.tool  # type: ignore[misc]
        self.does = family.does  # type: ignore[misc]
        self.family_units = dict(family.units)
        super().__init__()
        self.info = self.info.model_copy(
            update={
                "name": spec.name,
                "summary": f"generated long-tail batch (seed {spec.seed}): {spec.describe()}; "
                "makespan against max(longest job, work / CPUs)",
                "sizes": ["tiny", "small", "medium"],
                "default_size": "small",
            }
        )

    def shape(self, size: Size, cpus: int = 2) -> Shape:
        if size not in self.info.sizes:
            raise SchedcpError(f"{self.info.name} runs at sizes {', '.join(self.info.sizes)}, not {size!r}")
        timeout = {"tiny": 300.0, "small": 900.0, "medium": 1800.0}[size]
        return Shape(self.spec.short, self.spec.factor, self.family_units[size], timeout)

    def driver_argv(self, driver: str, shape: Shape) -> list[str]:
        return [
            GUEST_PYTHON,
            "-I",
            driver,
            "--variant",
            self.variant,
            *shape.args(),
            *self.spec.args(),
            "--seed",
            str(self.spec.seed),
        ]


def variant_workload(name: str) -> Workload | None:
    """The generated workload of that name (`long-tail-v<seed>-<index>`), or None if the name is
    not a variant's."""
    m = LONG_TAIL_NAME.match(name)
    if m is None:
        return None
    seed, index = int(m["seed"]), int(m["index"])
    return LongTailVariantWorkload(long_tail_variants(seed, index + 1)[index])


def variant_names(workload_class: str, seed: int = 1, count: int = 8) -> list[str]:
    """The names of a class's variant set (`bench suite --variants CLASS`)."""
    if workload_class != "batch-long-tail":
        raise SchedcpError(
            f"no generated variants for {workload_class!r} yet; batch-long-tail has them "
            "(messaging and latency variants are planned: issue 13)"
        )
    return [v.name for v in long_tail_variants(seed, count)]
