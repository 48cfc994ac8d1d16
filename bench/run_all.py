"""Run every benchmark, each in its own process, then write the report: what `make bench` does.

A benchmark that crashes is recorded as not measured (with the tail of its output), so one
failure never hides the others' figures. Arguments name a subset, e.g. `python -m bench.run_all ack idle`.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import RESULTS_DIR, BenchResult, log, quick
from bench.report import write_report

# Quiet ones first: the later benchmarks leave the machine busier (SQLite files, page cache).
BENCHMARKS = {
    "ack": "Slash-command ack",
    "start_latency": "Workflow start",
    "overhead": "Orchestration overhead",
    "throughput": "Throughput",
    "recovery": "Crash recovery",
    "idle": "Idle cost",
    "database": "Database (execute_plan, 10 operations)",
}


def run_one(key: str) -> None:
    log(f"--- bench.{key}")
    began = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{key}"], capture_output=True, text=True, check=False, timeout=3600
    )
    sys.stdout.write(completed.stdout)
    if completed.returncode != 0:
        sys.stdout.write(completed.stderr)
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-8:])
        BenchResult(
            key=key,
            title=BENCHMARKS[key],
            how="",
            result="did not run to the end",
            target="",
            met=None,
            notes=f"`python -m bench.{key}` exited {completed.returncode}:\n\n```\n{tail}\n```",
        ).save()
    log(f"--- bench.{key} took {time.monotonic() - began:.0f} s")


def main(selected: list[str]) -> int:
    unknown = [key for key in selected if key not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    keys = selected or list(BENCHMARKS)
    if not selected:
        for stale in RESULTS_DIR.glob("*.json"):
            stale.unlink()
    log(f"running {len(keys)} benchmark(s){' in quick mode (BENCH_QUICK=1)' if quick() else ''}")
    for key in keys:
        run_one(key)
    print(write_report())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
