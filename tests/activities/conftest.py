"""Fixtures for the activity tests: the seeded databases on each backend, and activity helpers."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from core.bootstrap import Databases
from core.demo import subscriptions
from core.schema import AuditEventRow
from core.settings import Settings


@pytest.fixture
async def pg_databases(pg_settings: Settings) -> AsyncIterator[Databases]:
    """Both databases created and seeded in a fresh PostgreSQL database (`pg_settings` made them)."""
    dbs = Databases.open(pg_settings)
    yield dbs
    await dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def dbs(request: pytest.FixtureRequest) -> Databases:
    """The seeded app and target databases, once on SQLite and once on PostgreSQL."""
    name = "databases" if request.param == "sqlite" else "pg_databases"
    databases: Databases = request.getfixturevalue(name)
    return databases


async def plan_of(dbs: Databases, customer_id: int) -> int:
    """The plan id a customer's subscription is on now."""
    async with dbs.target_engine.connect() as connection:
        value = await connection.scalar(
            select(subscriptions.c.plan_id).where(subscriptions.c.customer_id == customer_id)
        )
    assert value is not None, f"customer {customer_id} has no subscription"
    return int(value)


def activity_env(activity_id: str, attempt: int = 1, workflow_id: str = "ticket-abc") -> ActivityEnvironment:
    """Runs an activity as attempt `attempt` of activity `activity_id` in `workflow_id`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, activity_id=activity_id, attempt=attempt, workflow_id=workflow_id)
    return env


async def audit_events(dbs: Databases, ticket_id: str = "abc") -> list[AuditEventRow]:
    """A ticket's audit log, oldest first."""
    async with dbs.app_sessions() as session:
        query = select(AuditEventRow).where(AuditEventRow.ticket_id == ticket_id).order_by(AuditEventRow.id)
        return list((await session.scalars(query)).all())


def target_file(settings: Settings) -> str:
    """The path of the SQLite target DB of `settings`."""
    return settings.target_db_url.removeprefix("sqlite+aiosqlite:///")


def write_lock_free(path: str) -> bool:
    """Whether another writer could take the SQLite file's write lock now."""
    connection = sqlite3.connect(path, timeout=0.1)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()
