"""Run the benchmarks, each in its own process; a full run also writes the report: what `make bench` does.

Every run saves its results in a folder of its own, `bench/results/<time>-<full|quick|partial>/`,
and prints its table. Only a full run (every benchmark, not `BENCH_QUICK=1`) writes
docs/benchmarks.md: a quick run has too few samples to publish, and a partial one would put
figures from different days and code side by side. A benchmark that crashes is recorded as not
measured (with the tail of its output), so one failure never hides the others' figures.
Arguments name a subset, e.g. `python -m bench.run_all ack idle`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import RESULTS_ROOT, BenchResult, load_results, log, quick
from bench.report import console_table, write_report

# Module → title; each module saves one result or more (e.g. `database` also saves `validation`).
# Quiet ones first: the later benchmarks leave the machine busier (SQLite files, page cache).
BENCHMARKS = {
    "user_latency": "User-facing latency",
    "ack": "Slash-command ack (open loop)",
    "start_latency": "Workflow start",
    "overhead": "Orchestration overhead",
    "throughput": "Throughput",
    "recovery": "Crash recovery",
    "idle": "Idle cost",
    "database": "Database (execute_plan, 10 operations)",
    "revert": "Revert",
}


def run_one(key: str, directory: Path) -> None:
    log(f"--- bench.{key}")
    began = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{key}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={**os.environ, "BENCH_RESULTS_DIR": str(directory)},
    )
    sys.stdout.write(completed.stdout)
    if completed.returncode != 0:
        sys.stdout.write(completed.stderr)
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-8:])
        os.environ["BENCH_RESULTS_DIR"] = str(directory)
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


def run_kind(selected: list[str]) -> str:
    if quick():
        return "quick"
    return "partial" if selected and set(selected) != set(BENCHMARKS) else "full"


def main(selected: list[str]) -> int:
    unknown = [key for key in selected if key not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    keys = [key for key in BENCHMARKS if key in selected] if selected else list(BENCHMARKS)
    kind = run_kind(selected)
    directory = RESULTS_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}"
    directory.mkdir(parents=True)
    (directory / "RUN").write_text(f"{kind}\n{' '.join(keys)}\n")
    log(f"running {len(keys)} benchmark(s), a {kind} run; results in {directory}")
    for key in keys:
        run_one(key, directory)
    print(console_table(load_results(directory)))
    if kind == "full":
        log(f"wrote {write_report(directory)}")
    else:
        log(
            f"a {kind} run: docs/benchmarks.md left as it was (only a full `make bench` writes it); "
            f"results in {directory}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
