"""Side by side: the chosen benchmarks for a git ref and for the working tree, interleaved in one run.

    python -m bench.compare REF [--rounds 3] [benchmark ...]      (make bench-compare REF=… BENCH="…" ROUNDS=…)

On shared cores an absolute figure moves 20-30 % between runs; two versions measured in turns
within one run see the same machine, so their ratio means something. This checks REF out in a
temporary `git worktree`, then runs each benchmark A (REF), B (working tree), A, B, … and prints,
per figure, each side's median, the ratio B / A per round and its spread over the rounds.

Both sides run the working tree's benchmark code against their own product code: the benchmark
process and every product process it starts (`agent-ticket worker`, `bot`, the dev server's
tuning from `cli/devserver.py`) import REF's packages first (its tree first on PYTHONPATH). When
REF's declared dependencies (pyproject.toml) equal the working tree's, the same venv serves both;
otherwise REF gets a venv of its own with its own dependencies installed, kept under
`~/.cache/agent-ticket-bench/` for the next comparison with the same pyproject.toml.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import REPO_ROOT, RESULTS_ROOT, log, quick

DEFAULT_BENCHMARKS = ["throughput", "overhead", "user_latency"]
VENV_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agent-ticket-bench"

# Per benchmark: (label, path into the result's figures, True when higher is better).
METRICS: dict[str, list[tuple[str, str, bool]]] = {
    "throughput": [
        ("tickets/s", "tickets_per_second", True),
        ("ratio to Temporal's floor", "floor.ratio", True),
        ("ratio to the shaped floor", "shaped_floor.ratio", True),
        ("shaped floor / floor", "shaped_floor.of_floor", True),
        ("worker CPU ms/ticket", "worker_cpu_ms_per_ticket", False),
        ("server CPU ms/ticket", "server_cpu_ms_per_ticket", False),
        ("ticket latency p50 ms", "latency_ms.p50", False),
        ("workflow task wait max ms", "workflow_task_wait_ms.max", False),
        ("workflow task run max ms", "workflow_task_run_ms.max", False),
    ],
    "overhead": [
        ("overhead p50 ms", "overhead_ms.p50", False),
        ("end to end p50 ms", "end_to_end_ms.p50", False),
        ("workflow tasks/ticket", "history_per_ticket.workflow_tasks", False),
        ("history events/ticket", "history_per_ticket.history_events", False),
    ],
    "start_latency": [("start p50 ms (bot's client)", "bot_client_ms.p50", False)],
    "user_latency": [
        ("command → first message p50 ms", "command_to_first_message_ms.p50", False),
        ("click → done message p50 ms", "approval_click_to_done_message_ms.p50", False),
    ],
    "ack": [
        ("sustainable tickets/s via bot", "sustainable_per_second", True),
        ("ack p99 ms at 80% R", "open_loop.acks_ms.p99", False),
        ("burst ack max ms", "burst.acks_ms.max", False),
        ("burst drain s", "burst.drain_seconds", False),
        ("worker CPU ms/ticket", "cpu_ms_per_ticket.worker", False),
        ("bot CPU ms/ticket", "cpu_ms_per_ticket.bot", False),
    ],
    "ack_saturation": [("ack p99 ms at 50 senders", "concurrency_50_ms.p99", False)],
    "recovery": [
        ("kill → ticket done p50 s", "ticket_after_kill_s.p50", False),
        ("kill → replacement polling median s", "replacement_ready_median_s", False),
    ],
    "idle": [("worker CPU % waiting", "worker_cpu_percent", False), ("worker RSS MB", "worker_rss_max_mb", False)],
    "database": [
        ("sqlite execute_plan p50 ms", "sqlite.execute_plan.latency_ms.p50", False),
        ("postgresql execute_plan p50 ms", "postgresql.execute_plan.latency_ms.p50", False),
    ],
    "validation": [
        ("sqlite validate_plan p50 ms", "sqlite.latency_ms.p50", False),
        ("postgresql validate_plan p50 ms", "postgresql.latency_ms.p50", False),
    ],
}
# Results a benchmark module saves besides its own key.
EXTRA_RESULTS = {"ack": ["ack_saturation"], "database": ["validation"]}


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


# ---------------------------------------------------------------- the two sides


@dataclass(frozen=True)
class Side:
    name: str  # "A" (REF) or "B" (working tree)
    label: str  # what it is: the ref and commit, or "working tree <commit>"
    python: Path
    product_root: Path
    cwd: Path  # the benchmark process's working directory: holds `bench` and nothing else of the product
    pythonpath: str

    def env(self, results: Path) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "BENCH_PRODUCT_ROOT")}
        env["PYTHONPATH"] = self.pythonpath
        env["BENCH_PRODUCT_ROOT"] = str(self.product_root)
        env["BENCH_RESULTS_DIR"] = str(results)
        return env


def dependencies(pyproject: Path) -> dict[str, Any]:
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    return {"dependencies": project.get("dependencies", []), "extras": project.get("optional-dependencies", {})}


def venv_for(tree: Path) -> Path:
    """The python that has REF's dependencies: this venv's when they are the same, else a cached venv of its own."""
    if dependencies(tree / "pyproject.toml") == dependencies(REPO_ROOT / "pyproject.toml"):
        log("REF declares the same dependencies: the same venv serves both sides, REF's tree first on sys.path")
        return Path(sys.executable)
    digest = hashlib.sha256((tree / "pyproject.toml").read_bytes()).hexdigest()[:16]
    venv = VENV_CACHE / f"venv-{digest}"
    python = venv / "bin" / "python"
    if (venv / ".installed").exists():
        log(f"REF declares other dependencies: reusing its venv {venv}")
        return python
    log(f"REF declares other dependencies: building a venv of its own at {venv} (once per pyproject.toml)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    # Not editable: the worktree is temporary. REF's packages are imported from its tree (PYTHONPATH) anyway.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{tree}[dev]"], check=True)
    (venv / ".installed").write_text(str(tree) + "\n")
    return python


@contextlib.contextmanager
def ref_worktree(ref: str) -> Iterator[tuple[Path, str]]:
    """REF checked out (detached) in a temporary worktree, removed afterwards; yields (tree, commit)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    base = Path(tempfile.mkdtemp(prefix=f"bench-compare-{commit[:10]}-"))
    tree = base / "tree"
    git("worktree", "add", "--detach", str(tree), commit)
    try:
        yield tree, commit
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO_ROOT, check=False)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def bench_only_dir(base: Path) -> Path:
    """A folder holding only a link to this checkout's `bench` package: the benchmark process's cwd."""
    folder = base / "bench-code"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "bench"
    if not link.exists():
        link.symlink_to(REPO_ROOT / "bench", target_is_directory=True)
    return folder


def check_imports(side: Side) -> None:
    """Fail early unless the side's Python imports the product from the side's own tree."""
    probe = "import core, workflows.ticket, bench.harness; print(core.__file__); print(bench.harness.__file__)"
    env = side.env(Path("/nonexistent"))
    done = subprocess.run([str(side.python), "-c", probe], cwd=side.cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"side {side.name} ({side.label}) cannot import the product:\n{done.stderr[-2000:]}")
    core_file, bench_file = done.stdout.split()
    if not Path(core_file).resolve().is_relative_to(side.product_root.resolve()):
        raise SystemExit(f"side {side.name} imports the product from {core_file}, not from {side.product_root}")
    log(f"side {side.name} = {side.label}: product from {Path(core_file).parent.parent}, benchmarks from {bench_file}")


# ---------------------------------------------------------------- running and comparing


@dataclass
class Figures:
    """One figure's values over the rounds, per side."""

    label: str
    higher_is_better: bool
    a: dict[int, float] = field(default_factory=dict)  # by round
    b: dict[int, float] = field(default_factory=dict)

    @property
    def ratios(self) -> list[float]:
        """B / A of each round in which both sides gave the figure."""
        return [self.b[round] / self.a[round] for round in sorted(self.a) if round in self.b and self.a[round]]


def lookup(figures: dict[str, Any], path: str) -> float | None:
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_side(side: Side, key: str, results: Path) -> bool:
    log(f"{key}: side {side.name} ({side.label})")
    began = time.monotonic()
    done = subprocess.run(
        [str(side.python), "-m", f"bench.{key}"], cwd=side.cwd, env=side.env(results), capture_output=True, text=True
    )
    (results / f"{key}.log").parent.mkdir(parents=True, exist_ok=True)
    (results / f"{key}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        log(f"{key}: side {side.name} failed (exit {done.returncode}); its log: {results / f'{key}.log'}")
        return False
    log(f"{key}: side {side.name} took {time.monotonic() - began:.0f} s")
    return True


def collect(results: Path, key: str, table: dict[str, Figures], side: str, round_number: int) -> None:
    for result_key in [key, *EXTRA_RESULTS.get(key, [])]:
        path = results / f"{result_key}.json"
        if not path.exists():
            continue
        figures = json.loads(path.read_text()).get("figures", {})
        for label, figure_path, higher in METRICS.get(result_key, []):
            value = lookup(figures, figure_path)
            if value is None:
                continue
            row = table.setdefault(f"{result_key}: {label}", Figures(f"{result_key}: {label}", higher))
            (row.a if side == "A" else row.b)[round_number] = value


def verdict(row: Figures) -> str:
    ratios = row.ratios
    if len(ratios) < 3:
        return "too few rounds to tell (3 or more)"
    better = [ratio > 1 if row.higher_is_better else ratio < 1 for ratio in ratios]
    if all(better):
        return "B better in every round"
    if not any(better):
        return "B worse in every round"
    return "no difference beyond the spread"


def render(table: dict[str, Figures], a: Side, b: Side, rounds: int) -> str:
    lines = [
        f"A = {a.label}; B = {b.label}; {rounds} round(s), run A, B, A, B, …"
        + (" in quick mode (BENCH_QUICK=1: indicative only)" if quick() else ""),
        "",
        "| figure | A median | B median | B / A median | B / A per round (min-max) | |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.values():
        ratios = row.ratios
        if not ratios:
            continue
        per_round = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        a_median, b_median = statistics.median(row.a.values()), statistics.median(row.b.values())
        lines.append(
            f"| {row.label}{' (higher is better)' if row.higher_is_better else ''} | "
            f"{a_median:.2f} | {b_median:.2f} | {statistics.median(ratios):.2f} | "
            f"{per_round} ({min(ratios):.2f}-{max(ratios):.2f}) | {verdict(row)} |"
        )
    return "\n".join(lines)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the git ref to compare the working tree with (side A)")
    parser.add_argument("benchmarks", nargs="*", help=f"benchmarks to run (default: {' '.join(DEFAULT_BENCHMARKS)})")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_intermixed_args()


def main() -> int:
    options = arguments()
    keys = options.benchmarks or DEFAULT_BENCHMARKS
    unknown = [key for key in keys if not (REPO_ROOT / "bench" / f"{key}.py").exists()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    with ref_worktree(options.ref) as (tree, commit):
        code = bench_only_dir(tree.parent)
        a = Side("A", f"{options.ref} ({commit[:10]})", venv_for(tree), tree, code, f"{code}{os.pathsep}{tree}")
        head = git("rev-parse", "--short", "HEAD")
        dirty = "+uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
        label = f"working tree ({head}{dirty})"
        b = Side("B", label, Path(sys.executable), REPO_ROOT, code, f"{code}{os.pathsep}{REPO_ROOT}")
        for side in (a, b):
            check_imports(side)
        run = RESULTS_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-compare-{commit[:10]}"
        table: dict[str, Figures] = {}
        for round_number in range(1, options.rounds + 1):
            for key in keys:
                for side in (a, b):
                    results = run / f"{side.name}{round_number}"
                    results.mkdir(parents=True, exist_ok=True)
                    if run_side(side, key, results):
                        collect(results, key, table, side.name, round_number)
        summary = render(table, a, b, options.rounds)
    (run / "summary.md").write_text(summary + "\n")
    print(summary)
    log(f"results and logs in {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
