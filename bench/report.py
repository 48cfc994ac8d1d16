"""Turn `bench/results/*.json` into `docs/benchmarks.md`: the machine, the table, how each was measured.

The prose about profiling and what each optimisation bought lives in `bench/notes.md` (written
by hand, every figure in it from a run recorded there) and is copied in verbatim, so a new run
never loses it. Run alone with `python -m bench.report` to re-render the last results.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path

from bench.harness import REPO_ROOT, BenchResult, load_results, temporal_versions

DOC = REPO_ROOT / "docs" / "benchmarks.md"
NOTES = Path(__file__).resolve().parent / "notes.md"
ORDER = ["ack", "start_latency", "overhead", "throughput", "recovery", "idle", "database"]
VERDICT = {True: "met", False: "**missed**", None: "not measured"}
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
    lines = ["| benchmark | result | target | met? |", "|---|---|---|---|"]
    for result in results:
        lines.append(f"| {result.title} | {_cell(result.result)} | {_cell(result.target)} | {VERDICT[result.met]} |")
    return "\n".join(lines)


def details(result: BenchResult) -> str:
    parts = [f"### {result.title}", ""]
    if result.how:
        parts += [f"**How:** {result.how}", ""]
    parts += [f"**Result:** {result.result} — target {result.target or 'n/a'}: {VERDICT[result.met]}.", ""]
    if result.notes:
        parts += [f"**Notes:** {result.notes}", ""]
    quick_note = " (quick mode: fewer samples, indicative only)" if result.quick else ""
    parts += [
        f"Measured {result.measured_at} with `{result.command}`{quick_note}; load average (1/5/15 min) "
        f"at the end: {result.load_average}.",
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


def render(results: list[BenchResult]) -> str:
    quick_runs = any(result.quick for result in results)
    loads = ", ".join(f"{result.key} {result.load_average.split()[1]}" for result in results)
    header = [
        "# Benchmarks",
        "",
        "<!-- Written by `make bench` (bench/report.py) from bench/results/*.json and bench/notes.md. -->",
        "",
        f"Last run: {time.strftime('%Y-%m-%d')}, with `make bench`"
        + (" in quick mode (`BENCH_QUICK=1`): fewer samples, figures indicative only." if quick_runs else "."),
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


def write_report() -> str:
    """Write docs/benchmarks.md; return the results table for the console."""
    results = ordered(load_results())
    DOC.write_text(render(results))
    return table(results)


if __name__ == "__main__":
    print(write_report())
