#!/usr/bin/env python3
"""Record the classifier's ground truth: every benchmark workload profiled in several boots.

    scripts/record-classes.py --boots 5 --size tiny --size small --out DIR [--host-load N]
    scripts/record-classes.py --report DIR [DIR ...]    the current rules on the recordings

Each boot profiles every benchmark workload at each size (one sandbox boot per size and
round), exactly as `schedcp analyze workloads` does, and keeps the whole profile of each run
in DIR/<size>/boot<k>/<workload>.json.gz, so the rules can be changed and re-checked on the
same measurements without booting again: `--report` re-classifies every recording with the
current rules and prints the confusion table (declared class x found class, per size) and each
workload's margins, as docs/analysis.md shows them. `--host-load N` runs N CPU hogs on the
host during the boots, as a busy CI machine would.

Takes /tmp/schedcp-vm.lock per boot: one VM at a time on a 2-core host.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from schedcp.analysis.engine import finish_profile
from schedcp.analysis.workloads import check_workloads
from schedcp.bench.registry import all_workloads
from schedcp.config import load_settings
from schedcp.models.profile import WorkloadProfile
from schedcp.models.vocabulary import SIZES
from schedcp.sandbox import Sandbox

LOCK = "/tmp/schedcp-vm.lock"


def one_boot(size: str, boot_dir: Path, names: list[str]) -> None:
    settings = load_settings()
    boot_dir.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(prefix="schedcp-classes-") as tmp, Sandbox(settings) as vm:
            checks = check_workloads(
                vm,
                where="sandbox",
                names=names,
                size=size,
                build_dir=Path(tmp),
                settings=settings,
                progress=lambda c: print(f"  {c.workload}: {c.declared} -> {c.found} ({c.confidence})", flush=True),
            )
    for check in checks:
        if check.profile is not None:
            data = check.profile.model_dump_json(indent=1).encode()
            (boot_dir / f"{check.workload}.json.gz").write_bytes(gzip.compress(data, mtime=0))
    (boot_dir / "checks.json").write_text(json.dumps([c.model_dump(mode="json") for c in checks], indent=1) + "\n")


def recordings(folders: list[Path]) -> list[tuple[str, str, str, WorkloadProfile]]:
    """(size, boot, workload, profile) for every recording under the folders."""
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*/boot*/*.json.gz")):
            profile = WorkloadProfile.model_validate_json(gzip.decompress(path.read_bytes()))
            found.append((path.parent.parent.name, f"{folder.name}/{path.parent.name}", path.name[:-8], profile))
    return found


def report(folders: list[Path]) -> str:
    declared = {name: w.info.workload_class for name, w in all_workloads().items()}
    rows: dict[tuple[str, str], list[tuple[str | None, float | None, bool]]] = {}
    confusion: dict[tuple[str, str, str], int] = {}
    for size, _boot, name, profile in recordings(folders):
        finish_profile(profile)
        top = profile.primary_class
        rows.setdefault((name, size), []).append((top, profile.class_margin, bool(profile.close_call)))
        key = (size, declared[name], top or "(none)")
        confusion[key] = confusion.get(key, 0) + 1
    sizes = sorted({s for s, _, _ in confusion}, key=list(SIZES).index)
    header = "| workload | size | declared | runs | as declared | found instead | margin in each run | close calls |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    order = list(declared)
    for (name, size), runs in sorted(rows.items(), key=lambda kv: (order.index(kv[0][0]), sizes.index(kv[0][1]))):
        ok = sum(top == declared[name] for top, _, _ in runs)
        other = sorted({str(top) for top, _, _ in runs if top != declared[name]})
        # No competing class at all is the clearest decision there is: "-", not a number.
        each = " ".join("-" if m is None else f"{m:.2f}" for _, m, _ in runs)
        close = sum(c for _, _, c in runs)
        cells = [name, size, declared[name], str(len(runs)), str(ok), ", ".join(other) or "-", each, str(close)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    classes = sorted({d for _, d, _ in confusion} | {f for _, _, f in confusion})
    for size in sizes:
        lines.append(f"Confusion, size {size} (rows: declared class, columns: class found):")
        lines.append("")
        lines.append("| declared \\ found | " + " | ".join(classes) + " |")
        lines.append("|---|" + "---|" * len(classes))
        for d in sorted({d for s, d, _ in confusion if s == size}):
            cells = [str(confusion.get((size, d, f), 0) or "") for f in classes]
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boots", type=int, default=5)
    ap.add_argument("--first", type=int, default=1, help="number of the first boot (to add boots to a folder)")
    ap.add_argument("--size", action="append", default=[])
    ap.add_argument("--workload", action="append", default=[])
    ap.add_argument("--host-load", type=int, default=0, help="CPU hogs to run on the host meanwhile")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, nargs="+", help="recording folders to re-classify")
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return 0
    if args.out is None:
        ap.error("--out is required to record")
    sizes = args.size or ["tiny", "small"]
    hogs = [subprocess.Popen(["stress-ng", "--cpu", "1", "--timeout", "0", "--quiet"]) for _ in range(args.host_load)]
    try:
        for k in range(args.first, args.first + args.boots):
            for size in sizes:
                t0 = time.monotonic()
                print(f"boot {k}, size {size}", flush=True)
                one_boot(size, args.out / size / f"boot{k}", args.workload)
                print(f"boot {k}, size {size}: {time.monotonic() - t0:.0f} s", flush=True)
    finally:
        for h in hogs:
            h.terminate()
            h.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
