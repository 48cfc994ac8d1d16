"""Fixtures of the chaos tests: workers whose Core logs are captured, on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.chaos.core_logs import CoreLogs


@pytest.fixture(scope="session")
def core_logs() -> CoreLogs:
    return CoreLogs()


@pytest.fixture
async def worker_client(time_env: WorkflowEnvironment, core_logs: CoreLogs) -> Client:
    """A client of the time-skipping server for workers: on a runtime that forwards Core's log lines.

    Tickets are started and awaited through `time_env.client`, whose waits let the server skip time.
    """
    config = time_env.client.service_client.config
    return await Client.connect(
        config.target_host,
        namespace=time_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=core_logs.runtime,
    )


@pytest.fixture
async def no_task_trouble(core_logs: CoreLogs) -> AsyncIterator[None]:
    """Fails the test if any workflow task ran too long ("Workflow task duration exceeded") or misbehaved."""
    mark = core_logs.mark()
    yield
    trouble = await core_logs.trouble_since(mark)
    assert trouble == [], trouble
