"""Issue 12, item 6, for the dependencies that are processes: the worker and the Temporal server.

Their outages are real (a process gone for that long), so the suite runs the 10-second ones; the
2- and 15-minute ones run with CHAOS_LONG=1 (docs/reliability.md has their measured results).
The worker case runs on the session's dev server: its workers shut down (activities in flight are
abandoned, as when the process dies) and new ones start. The time-skipping server cannot stand in
here: it does not move its clock while a workflow task waits for a worker, and it sends queries to
the sticky queue of a worker that is gone.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from service.temporal import temporal_cli_path
from tests.chaos.core_logs import CoreLogs
from tests.chaos.outages import TemporalServerDown
from tests.chaos.verdict import DURATIONS, RESUMES_WITHIN, run_and_check
from tests.chaos.world import RealClock, chaos_world
from tests.durability.processes import ChildProcess, free_port, temporal_dev_server

LONG = os.environ.get("CHAOS_LONG") == "1"


def long_enough(label: str) -> int:
    """A test's time-out: the outage, plus two minutes to set up, catch up and check."""
    return int(DURATIONS[label].total_seconds()) + 120


REAL_DURATIONS = [
    pytest.param(
        label,
        marks=[pytest.mark.timeout(long_enough(label))]
        + ([] if label == "10s" or LONG else [pytest.mark.skip(reason="set CHAOS_LONG=1")]),
    )
    for label in DURATIONS
]


@pytest.fixture(scope="session")
async def local_worker_client(local_env: WorkflowEnvironment, core_logs: CoreLogs) -> Client:
    config = local_env.client.service_client.config
    return await Client.connect(
        config.target_host,
        namespace=local_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=core_logs.runtime,
    )


@pytest.mark.parametrize("duration", REAL_DURATIONS)
async def test_the_worker_process_gone_for_a_while(
    local_env: WorkflowEnvironment,
    local_worker_client: Client,
    no_task_trouble: None,
    tmp_path: Path,
    duration: str,
) -> None:
    async with chaos_world(local_env.client, RealClock(), local_worker_client, tmp_path) as world:
        measured = await run_and_check(world, world.workers, "worker", duration)
    assert measured.done == len(world.tickets)
    assert measured.executed_after_end <= RESUMES_WITHIN


class DevServer:
    """A Temporal dev server of this test's own, on a SQLite file that outlives its restarts."""

    def __init__(self, data: Path) -> None:
        self._db = data / "temporal.db"
        self._port, self._ui_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self._port}"
        self._process: ChildProcess | None = None

    async def start(self, within: float = 60.0) -> None:
        self._process = temporal_dev_server("temporal", temporal_cli_path(), self._db, self._port, self._ui_port)
        await self._process.start()
        deadline = time.monotonic() + within
        while True:
            try:
                await Client.connect(self.address)
                return
            except RuntimeError:
                assert self._process.running, self._process.output()
                assert time.monotonic() < deadline, self._process.output()
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop(grace=30)
            self._process = None


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize("duration", REAL_DURATIONS)
async def test_the_temporal_server_gone_for_a_while(
    dev_server: DevServer,
    core_logs: CoreLogs,
    no_task_trouble: None,
    tmp_path: Path,
    duration: str,
) -> None:
    client = await Client.connect(dev_server.address, data_converter=pydantic_data_converter)
    worker_client = await Client.connect(
        dev_server.address, data_converter=pydantic_data_converter, runtime=core_logs.runtime
    )
    outage = TemporalServerDown(dev_server.start, dev_server.stop)
    async with chaos_world(client, RealClock(), worker_client, tmp_path / "world") as world:
        measured = await run_and_check(world, outage, "temporal server", duration)
    assert measured.done == len(world.tickets)
    assert measured.executed_after_end <= RESUMES_WITHIN
