#!/usr/bin/env python3
"""Benchmark the verifier (issue 10's performance targets): a benchmark, not a test.

In one sandbox boot: every built-in policy through every stage, then every entry of the safety
corpus (tests/fixtures/verify/corpus.toml). Writes verify.json (each report, each stage's
seconds, the corpus table with seconds to detection) and verify.png into the output folder,
and prints the tables. Targets: the static stages (compile, lint, the kernel's verifier, with
the sandbox already booted) <= 15 s per policy; the whole corpus <= 15 minutes in one boot.

    .venv/bin/python scripts/bench-verify.py [--quick] [--out bench-results/DATE-verify]
                                            [--quick-corpus] [--policies fifo,vtime]
                                            [--no-builtins] [--no-corpus]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from schedcp.bpf.policy import builtin_policies
from schedcp.sandbox import Sandbox
from schedcp.service import Context
from schedcp.service.verify import VerifyRequest, verify

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = ROOT / "tests" / "fixtures" / "verify"
STATIC = ("compile", "lint", "kernel-verifier")


def stage_times(report: Any) -> dict[str, float]:
    return {s.stage: round(s.duration_s, 2) for s in report.stages if s.skipped is None}


def detection_s(report: Any) -> float | None:
    """For a dynamic failure: when the monitor (or the kernel) stopped the policy."""
    failed = report.failure
    if failed is None:
        return None
    for f in failed.findings:
        m = re.search(r"(?:after|, )(\d+(?:\.\d+)?) s(?: into the run|:)", f.message)
        if m:
            return float(m.group(1))
    return round(failed.duration_s, 2)


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    rows = data["builtins"]
    if rows:
        names = [r["policy"] for r in rows]
        bottom = [0.0] * len(rows)
        for stage in ("compile", "lint", "kernel-verifier", "dynamic", "performance"):
            vals = [r["seconds"].get(stage, 0.0) for r in rows]
            axes[0].bar(names, vals, bottom=bottom, label=stage)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        axes[0].set_ylabel("seconds (emulated sandbox)" if data["emulated"] else "seconds")
        axes[0].set_title("built-in policies: time per stage")
        axes[0].legend()
        axes[0].tick_params(axis="x", rotation=45)
    corpus = data["corpus"]
    if corpus:
        names = [c["entry"] for c in corpus]
        axes[1].barh(names, [c["seconds"] for c in corpus], color=["C3" if c["as_expected"] else "C7" for c in corpus])
        axes[1].set_xlabel("seconds until the verifier stopped it")
        axes[1].set_title("safety corpus (grey: not where expected)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="built-ins: the quick dynamic run and benchmark size")
    ap.add_argument("--quick-corpus", action="store_true", help="the corpus too (default: the full dynamic run)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / f"{dt.date.today()}-verify")
    ap.add_argument("--policies", default="", help="comma-separated built-ins (default: all)")
    ap.add_argument("--no-builtins", action="store_true")
    ap.add_argument("--no-corpus", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.policies.split(",") if n] or [p.name for p in builtin_policies()]
    corpus = tomllib.loads((CORPUS_DIR / "corpus.toml").read_text())["entry"]
    base = Context()
    data: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "quick_corpus": args.quick_corpus,
    }
    data["builtins"], data["corpus"] = [], []
    t_all = time.monotonic()
    with Sandbox(base.settings) as vm:
        assert vm.info is not None
        data["boot"] = vm.info.model_dump(mode="json")
        data["emulated"] = vm.info.accel == "tcg"
        ctx = base.lending(vm)
        for name in [] if args.no_builtins else names:
            report = verify(ctx, VerifyRequest(policy=name, quick=args.quick, store=False)).report
            secs = stage_times(report)
            row = {
                "policy": name,
                "passed": report.passed,
                "stopped_at": report.stopped_at,
                "seconds": secs,
                "static_s": round(sum(secs.get(s, 0.0) for s in STATIC), 2),
                "workload": report.workload,
                "report": report.model_dump(mode="json"),
            }
            data["builtins"].append(row)
            print(f"{name}: {'PASSED' if report.passed else f'FAILED at {report.stopped_at}'} {secs}", flush=True)
            if not report.passed:
                print(report.render(), flush=True)
        t_corpus = time.monotonic()
        for entry in [] if args.no_corpus else corpus:
            t0 = time.monotonic()
            request = VerifyRequest(
                policy=str(CORPUS_DIR / "corpus" / entry["name"]),
                tunables=entry.get("tunables", {}),
                quick=args.quick_corpus,
                until="dynamic",
                store=False,
            )
            report = verify(ctx, request).report
            failed = report.failure
            said = [f"{f.rule}: {f.message}" for f in failed.findings] if failed else []
            ok = report.stopped_at == entry["stage"] and any(re.search(entry["reason"], s, re.I) for s in said)
            row = {
                "entry": entry["name"],
                "expected": entry["stage"],
                "stopped_at": report.stopped_at,
                "as_expected": ok,
                "reason": said[0] if said else "",
                "seconds": round(time.monotonic() - t0, 2),
                "detection_s": detection_s(report) if report.stopped_at == "dynamic" else None,
                "survived": vm.ping(),
            }
            data["corpus"].append(row)
            print(
                f"{entry['name']}: stopped at {report.stopped_at} ({'ok' if ok else 'NOT AS EXPECTED'}) "
                f"in {row['seconds']} s: {row['reason'][:150]}",
                flush=True,
            )
        data["corpus_total_s"] = round(time.monotonic() - t_corpus, 1)
    data["total_s"] = round(time.monotonic() - t_all, 1)
    (args.out / "verify.json").write_text(json.dumps(data, indent=1))
    plot(data, args.out / "verify.png")
    print("\n| policy | result | compile | lint | kernel-verifier | dynamic | performance | static total |")
    print("|---|---|---|---|---|---|---|---|")
    for r in data["builtins"]:
        s = r["seconds"]
        cells = " | ".join(
            f"{s[k]:.1f}" if k in s else "-" for k in ("compile", "lint", "kernel-verifier", "dynamic", "performance")
        )
        result = "passed" if r["passed"] else f"failed at {r['stopped_at']}"
        print(f"| {r['policy']} | {result} | {cells} | {r['static_s']:.1f} |")
    print("\n| entry | expected | stopped at | reason | seconds | detection s |")
    print("|---|---|---|---|---|---|")
    for c in data["corpus"]:
        print(
            f"| {c['entry']} | {c['expected']} | {c['stopped_at']} | {c['reason'][:90]} | {c['seconds']:.1f} "
            f"| {c['detection_s'] if c['detection_s'] is not None else '-'} |"
        )
    print(f"\ncorpus: {data.get('corpus_total_s', 0)} s; everything {data['total_s']} s; written to {args.out}")
    bad = [c for c in data["corpus"] if not c["as_expected"]] + [r for r in data["builtins"] if not r["passed"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
