"""An execution cancelled mid-transaction ends only once its transaction has (red team 57).

Cancelled twice while it waited on SQLite's write lock (a missed heartbeat, then the worker stopping),
an execution's second cancellation cut its rollback short: SQLAlchemy went on closing the connection
in a task that never ended, and the worker process could not exit. An execution that went on writing
after its activity ended would be as bad the other way: the ticket could be told nothing was written.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from activities.execution import ExecutionActivities
from activities.sql import AnyOperation
from core import database
from core.bootstrap import Databases
from core.demo import subscriptions
from core.ledger import LEDGER_TABLE, executions
from core.models import ExecutePlanInput, Plan
from core.settings import Settings
from tests.activities.conftest import activity_env, plan_of, target_file, write_lock_free
from tests.activities.test_execution import NEW_FLAG, UPGRADE, plan_hash
from tests.support import dev_authority


def _input(workflow_id: str, operation: AnyOperation = UPGRADE) -> ExecutePlanInput:
    plan = Plan(summary="a change", operations=[operation])
    return ExecutePlanInput(
        ticket_id="t1", workflow_id=workflow_id, plan=plan, plan_hash=plan_hash(plan), approved_rows=[]
    )


def _ledger(path: str) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [row[0] for row in connection.execute(f"SELECT workflow_id FROM {LEDGER_TABLE} ORDER BY workflow_id")]
    finally:
        connection.close()


def _connections_closing() -> list[asyncio.Task[object]]:
    """Tasks of SQLAlchemy's still closing a connection: one that never ends keeps the process from exiting."""
    return [task for task in asyncio.all_tasks() if "close" in task.get_coro().__qualname__]  # type: ignore[union-attr]


@pytest.mark.parametrize("cancellations", [1, 2])
async def test_an_execution_cancelled_while_waiting_for_the_lock_ends_with_its_transaction(
    databases: Databases, settings: Settings, cancellations: int
) -> None:
    executor = ExecutionActivities(databases.target_engine, dev_authority())
    await activity_env("warm", workflow_id="ticket-warm").run(executor.execute_plan, _input("ticket-warm", NEW_FLAG))
    before = await plan_of(databases, 1)
    assert before != UPGRADE.values[0].value
    path = target_file(settings)

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the target: the execution waits for it
    env = activity_env("execute", workflow_id="ticket-t1")
    executing = asyncio.create_task(env.run(executor.execute_plan, _input("ticket-t1")))
    await asyncio.sleep(0.5)
    for _ in range(cancellations):  # its heartbeat missed; then, say, the worker stopping
        executing.cancel()
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    waited_for_its_transaction = not executing.done()
    holder.execute("ROLLBACK")
    holder.close()
    await asyncio.wait({executing}, timeout=15)
    assert waited_for_its_transaction, "the activity ended while its transaction was still open"
    assert executing.cancelled()

    # Rolled back, nothing written, the connection back in the pool, none left closing, the lock free.
    assert databases.target_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert not _connections_closing()
    assert write_lock_free(path)
    assert _ledger(path) == ["ticket-warm"]
    assert await plan_of(databases, 1) == before

    # The retry writes it, once.
    result = await activity_env("execute", attempt=2, workflow_id="ticket-t1").run(
        executor.execute_plan, _input("ticket-t1")
    )
    assert not result.replayed and result.rows_changed == 1
    assert _ledger(path) == ["ticket-t1", "ticket-warm"]
    assert await plan_of(databases, 1) == UPGRADE.values[0].value


async def _ledger_rows(databases: Databases) -> list[str]:
    async with databases.target_engine.connect() as connection:
        return list((await connection.scalars(select(executions.c.workflow_id).order_by("workflow_id"))).all())


async def test_an_execution_cancelled_while_a_postgresql_row_lock_is_held_ends_within_the_lock_wait(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team 59: it stops only between statements, so the statement's own wait must end; before, it never did."""
    monkeypatch.setattr(database, "POSTGRES_LOCK_TIMEOUT_MS", 1500)
    databases = Databases.open(pg_settings)  # engines made with the shorter wait
    try:
        await _cancel_while_a_row_lock_is_held(databases, pg_settings)
    finally:
        await databases.close()


async def _cancel_while_a_row_lock_is_held(databases: Databases, settings: Settings) -> None:
    executor = ExecutionActivities(databases.target_engine, dev_authority())
    await activity_env("warm", workflow_id="ticket-warm").run(executor.execute_plan, _input("ticket-warm", NEW_FLAG))
    before = await plan_of(databases, 1)

    other_session = create_async_engine(settings.target_db_url)
    try:
        async with other_session.connect() as holder:
            await holder.begin()  # another session holds the row the plan updates, and keeps it
            await holder.execute(update(subscriptions).where(subscriptions.c.customer_id == 1).values(seats=7))
            env = activity_env("execute", workflow_id="ticket-t1")
            executing = asyncio.create_task(env.run(executor.execute_plan, _input("ticket-t1")))
            await asyncio.sleep(0.5)
            executing.cancel()
            await asyncio.wait({executing}, timeout=10)
            ended_while_held = executing.done()
            await holder.rollback()
    finally:
        await other_session.dispose()
    assert ended_while_held, "a cancelled execution waited on the row lock for as long as it was held"
    assert executing.cancelled()
    assert databases.target_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _ledger_rows(databases) == ["ticket-warm"]
    assert await plan_of(databases, 1) == before

    result = await activity_env("execute", attempt=2, workflow_id="ticket-t1").run(
        executor.execute_plan, _input("ticket-t1")
    )
    assert not result.replayed and await _ledger_rows(databases) == ["ticket-t1", "ticket-warm"]
