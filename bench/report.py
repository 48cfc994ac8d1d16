"""Turn a full run's `bench/results/<run>/*.json` into `docs/benchmarks.md`: the machine, the table, how each
was measured.

Only a full run is written (every benchmark, not quick: `write_report` refuses anything else), so the
doc never mixes days, code or sample sizes. The prose about profiling and what each optimisation
bought lives in `bench/notes.md` (written by hand, every figure in it from a run recorded there) and
is copied in verbatim, so a new run never loses it. `python -m bench.report [<run folder>]`
re-renders the newest full run (or the one named).
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path

from bench.harness import REPO_ROOT, RESULTS_ROOT, BenchResult, load_results, temporal_versions

DOC = REPO_ROOT / "docs" / "benchmarks.md"
NOTES = Path(__file__).resolve().parent / "notes.md"
ORDER = [
    "user_latency",
    "ack",
    "ack_saturation",
    "start_latency",
    "overhead",
    "throughput",
    "recovery",
    "idle",
    "database",
    "validation",
    "revert",
]
DRIVERS = ("sqlalchemy", "asyncpg", "aiosqlite")


def machine() -> list[tuple[str, str]]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return [
        ("CPU cores", f"{os.cpu_count()} ({cpu_model})"),
        ("Memory", f"{memory_kb / 2**20:.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("temporalio", metadata.version("temporalio")),
        ("Temporal CLI / server", temporal_versions()),
        ("SQLAlchemy / asyncpg / aiosqlite", " / ".join(metadata.version(name) for name in DRIVERS)),
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(results: list[BenchResult]) -> str:
    lines = [
        "| benchmark | result | samples | machine while it ran | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.title} | {_cell(result.result)} | {_cell(result.samples or 'not stated')} | "
            f"{_cell(result.load_brief)} | {_cell(result.target)} | {result.verdict} |"
        )
    return "\n".join(lines)


def console_table(results: list[BenchResult]) -> str:
    """The table as a run prints it, saying when it is not publishable."""
    results = ordered(results)
    quick_runs = [result.key for result in results if result.quick]
    warning = (
        f"\nQUICK RUN ({', '.join(quick_runs)}): fewer samples and shorter windows, indicative only; not a report.\n"
        if quick_runs
        else ""
    )
    return warning + table(results)


def details(result: BenchResult) -> str:
    parts = [f"### {result.title}", ""]
    if result.how:
        parts += [f"**How:** {result.how}", ""]
    parts += [f"**Result:** {result.result} — target {result.target or 'n/a'}: {result.verdict}.", ""]
    if result.notes:
        parts += [f"**Notes:** {result.notes}", ""]
    quick_note = " (quick mode: fewer samples, indicative only)" if result.quick else ""
    parts += [
        f"Measured {result.measured_at} with `{result.command}`{quick_note} on {result.product}; "
        f"samples: {result.samples or 'not stated'}; while it ran: {result.load_brief}; load average "
        f"(1/5/15 min) at the end: {result.load_average}.",
        "",
    ]
    if result.figures:
        parts += [
            "<details><summary>Raw figures</summary>",
            "",
            "```",
            _figures(result.figures),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def _figures(figures: dict[str, object], indent: str = "") -> str:
    lines = []
    for key, value in figures.items():
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.append(_figures(value, indent + "  "))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            lines.append(f"{indent}{key}:")
            lines.extend(f"{indent}  - {_compact(item)}" for item in value)
        else:
            lines.append(f"{indent}{key}: {_scalar(value)}")
    return "\n".join(lines)


def _scalar(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    return str(value)


def _compact(item: dict[str, object]) -> str:
    return ", ".join(f"{key}={_scalar(value)}" for key, value in item.items())


def ordered(results: list[BenchResult]) -> list[BenchResult]:
    rank = {key: index for index, key in enumerate(ORDER)}
    return sorted(results, key=lambda result: rank.get(result.key, len(ORDER)))


def render(results: list[BenchResult], run_name: str) -> str:
    loads = ", ".join(f"{result.key} {result.load_average.split()[1]}" for result in results)
    products = sorted({result.product for result in results})
    header = [
        "# Benchmarks",
        "",
        "<!-- Written by a full `make bench` (bench/report.py) from bench/results/<run>/*.json and bench/notes.md;"
        " quick and partial runs only print their table. -->",
        "",
        f"Last run: {time.strftime('%Y-%m-%d')}, a full `make bench` (run `{run_name}`) of {', '.join(products)}.",
        "Each row says how many samples it rests on and how busy the machine was while it ran (1-minute load "
        "average range, and the cores other work used besides this benchmark's own processes).",
        "Every benchmark starts its own Temporal dev server (SQLite file, tuned as `agent-ticket dev` runs it), "
        "workers, bot and fake Slack/OpenAI servers (zero added latency) on this one machine, so server, worker "
        "and bot share its cores, as the targets assume.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in machine()),
        f"| 5-minute load average at the end of each benchmark | {loads} |",
        "",
        "The machine is shared with other work; a load average above 2 means the benchmarks got less than "
        "the two cores, and latency figures are then pessimistic.",
        "",
        "## Results",
        "",
        table(results),
        "",
        "## How each was measured",
        "",
    ]
    body = [details(result) for result in results]
    notes = NOTES.read_text().strip() if NOTES.exists() else ""
    return "\n".join(header + body) + ("\n" + notes + "\n" if notes else "")


class NotAFullRun(Exception):
    """The results folder is not a complete, non-quick run: it may be printed, never published."""


def check_full_run(directory: Path, results: list[BenchResult]) -> None:
    marker = directory / "RUN"
    kind = marker.read_text().split()[0] if marker.exists() else "unknown"
    quick_ones = [result.key for result in results if result.quick]
    if kind != "full" or quick_ones:
        raise NotAFullRun(
            f"{directory.name} is a {kind} run{' with quick results: ' + ', '.join(quick_ones) if quick_ones else ''}; "
            "docs/benchmarks.md is written only from a full `make bench`"
        )


def write_report(directory: Path) -> Path:
    """Write docs/benchmarks.md from the full run in `directory`."""
    results = ordered(load_results(directory))
    check_full_run(directory, results)
    DOC.write_text(render(results, directory.name))
    return DOC


def newest_full_run() -> Path:
    runs = sorted(path for path in RESULTS_ROOT.glob("*-full") if path.is_dir())
    if not runs:
        raise NotAFullRun(f"no full run under {RESULTS_ROOT}; run `make bench`")
    return runs[-1]


if __name__ == "__main__":
    import sys

    try:
        print(write_report(Path(sys.argv[1]) if len(sys.argv) > 1 else newest_full_run()))
    except NotAFullRun as refusal:
        print(refusal, file=sys.stderr)
        sys.exit(1)
