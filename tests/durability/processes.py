"""Child processes for the durability tests: worker processes and a Temporal dev server of our own.

Every process started here is stopped by its owner in a `finally` (SIGTERM, then SIGKILL),
so a failing test leaves no orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.settings import PROJECT_ROOT
from tests.durability.worker_process import POLLING_LINE, WAITING_LINE

# Settings a worker process must not inherit from the developer's shell: they decide its behaviour here.
_INHERITED_PREFIXES = ("OPENAI_", "SLACK_", "TEMPORAL_", "AGENT_TICKET_", "PAYLOAD_CODEC", "CODEC_", "CRASH_")
_INHERITED_NAMES = {"APP_DATABASE_URL", "TARGET_DATABASE_URL", "APPROVERS"}


def clean_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus agent-ticket settings, plus `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_INHERITED_PREFIXES) and key not in _INHERITED_NAMES
    }
    env.update(overrides)
    return env


class ChildProcess:
    """An asyncio child process whose output is collected line by line with the time each arrived."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self._argv = list(argv)
        self._env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[tuple[float, str]] = []
        self.started_at = 0.0
        self._reader: asyncio.Task[None] | None = None
        self._new_line = asyncio.Event()

    async def start(self) -> None:
        self.started_at = time.time()
        self.process = await asyncio.create_subprocess_exec(
            *self._argv,
            cwd=PROJECT_ROOT,
            env=self._env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: a Ctrl-C on pytest does not hit it twice
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append((time.time(), line.decode(errors="replace").rstrip()))
            self._new_line.set()
        self._new_line.set()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def output(self, last: int = 40) -> str:
        return "\n".join(text for _, text in self.lines[-last:])

    async def wait_for_line(self, fragment: str, within: float = 30.0) -> tuple[float, str]:
        """The first output line containing `fragment` and when it arrived; fails if the process dies first."""
        deadline = time.monotonic() + within
        while True:
            for arrived, text in self.lines:
                if fragment in text:
                    return arrived, text
            if self._reader is not None and self._reader.done():
                raise AssertionError(f"{self.name} exited before printing {fragment!r}:\n{self.output()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name} did not print {fragment!r} in {within} s:\n{self.output()}")
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), timeout=min(remaining, 0.5))

    async def send_line(self, text: str) -> float:
        """Write one line to its stdin; returns when it was written."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()
        return time.time()

    async def kill(self) -> float:
        """SIGKILL (no clean-up at all, like a node dying); returns when it was sent."""
        assert self.process is not None
        killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self._drain()
        return killed_at

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it is still there after `grace` seconds. Safe to call twice."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGKILL)
                await self.process.wait()
        await self._drain()
        return self.process.returncode

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, timeout=5)


def worker_process(name: str, env: Mapping[str, str]) -> ChildProcess:
    """`tests/durability/worker_process.py` as a child process with `env` as its whole environment."""
    return ChildProcess(name, [sys.executable, "-m", "tests.durability.worker_process"], env)


async def warm_up(worker: ChildProcess, within: float = 60.0) -> None:
    """Until a worker started with `WAIT_FOR_GO=1` has imported everything and waits for `go()`."""
    await worker.wait_for_line(WAITING_LINE, within=within)


async def go(worker: ChildProcess) -> float:
    """Let a warm worker connect and poll; returns when it was told to."""
    return await worker.send_line("go")


async def wait_until_polling(worker: ChildProcess, within: float = 60.0) -> float:
    """When the worker logged that it polls (the epoch time it wrote in the line itself)."""
    arrived, text = await worker.wait_for_line(POLLING_LINE, within=within)
    stamp = text.split(" ", 1)[0]
    try:
        return float(stamp)
    except ValueError:
        return arrived


def temporal_dev_server(name: str, cli: Path, db_file: Path, port: int, ui_port: int) -> ChildProcess:
    """`temporal server start-dev` persisting to `db_file` (SQLite), headless, on the given ports."""
    argv = [
        str(cli),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--headless",
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "frontend.enableExecuteMultiOperation=true",
    ]
    return ChildProcess(name, argv, clean_environment({}))
