#!/usr/bin/env python3
"""Record the classifier's ground truth: every benchmark workload profiled in several boots.

    scripts/record-classes.py --boots 5 --size tiny --size small --out DIR [--host-load N]

Each boot profiles every benchmark workload at each size (one sandbox boot per size and
round), exactly as `schedcp analyze workloads` does, and keeps the whole profile of each run
in DIR/<size>/boot<k>/<workload>.json.gz, so the rules can be changed and re-checked on the
same measurements without booting again (`schedcp.analysis.confusion`). `--host-load N` runs N
CPU hogs on the host during the boots, as a busy CI machine would.

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

from schedcp.analysis.workloads import check_workloads
from schedcp.config import load_settings
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boots", type=int, default=5)
    ap.add_argument("--first", type=int, default=1, help="number of the first boot (to add boots to a folder)")
    ap.add_argument("--size", action="append", default=[])
    ap.add_argument("--workload", action="append", default=[])
    ap.add_argument("--host-load", type=int, default=0, help="CPU hogs to run on the host meanwhile")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
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
