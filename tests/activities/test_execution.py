"""Executing plans: once, in one transaction, guarded by the approved row counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.budget import charge
from activities.execution import (
    ERROR_INVALID_OPERATION,
    ERROR_OPERATION_FAILED,
    ERROR_PLAN_HASH,
    ERROR_ROW_LIMIT,
    ExecutionActivities,
)
from activities.safety import SafetyActivities
from activities.sql import forget_reflection
from core.bootstrap import Databases
from core.demo import feature_flags, users
from core.ledger import budget_charges, executions
from core.masking import MASK
from core.models import (
    Assignment,
    DeleteOperation,
    ExecutePlanInput,
    ExecutionResult,
    Filter,
    InsertOperation,
    Plan,
    SafetyReport,
    SelectOperation,
    UpdateOperation,
    ValidatePlanInput,
    plan_hash,
)
from core.names import ERROR_APPROVED_ROWS_CHANGED
from core.policy import PolicyCache, TablePolicy, store_policy
from tests.support import dev_authority, run_in_its_workflow

from .conftest import plan_of

ACME = Filter(column="customer_id", op="eq", value=1)
UPGRADE = UpdateOperation(table="subscriptions", values=[Assignment(column="plan_id", value=3)], filters=[ACME])
NEW_FLAG = InsertOperation(
    table="feature_flags",
    values=[
        Assignment(column="customer_id", value=1),
        Assignment(column="name", value="dark_mode"),
        Assignment(column="enabled", value=True),
    ],
)


def _input(
    *operations: Any, approved_rows: list[int] | None = None, workflow_id: str = "ticket-t1"
) -> ExecutePlanInput:
    plan = Plan(summary="test", operations=list(operations))
    return ExecutePlanInput(
        ticket_id="t1", workflow_id=workflow_id, plan=plan, plan_hash=plan_hash(plan), approved_rows=approved_rows or []
    )


async def _execute(dbs: Databases, input: ExecutePlanInput) -> ExecutionResult:
    result: ExecutionResult = await run_in_its_workflow(
        ExecutionActivities(dbs.target_engine, dev_authority()).execute_plan, input
    )
    return result


async def _count(engine: AsyncEngine, query: Any) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(query) or 0)


async def _ledger_rows(dbs: Databases) -> int:
    return await _count(dbs.target_engine, select(func.count()).select_from(executions))


async def _flags(dbs: Databases, name: str) -> int:
    return await _count(dbs.target_engine, select(func.count()).where(feature_flags.c.name == name))


async def _enabled_flags_of_acme(dbs: Databases) -> list[bool]:
    async with dbs.target_engine.connect() as connection:
        query = select(feature_flags.c.enabled).where(feature_flags.c.customer_id == 1).order_by(feature_flags.c.id)
        return list((await connection.scalars(query)).all())


@contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement sent to the target while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_plan_runs_and_is_recorded_in_the_ledger(dbs: Databases) -> None:
    result = await _execute(
        dbs, _input(UPGRADE, NEW_FLAG, SelectOperation(table="subscriptions", filters=[ACME]), approved_rows=[1, 1, 1])
    )
    assert not result.replayed
    assert [r.rows_affected for r in result.results] == [1, 1, 1]
    assert result.results[2].rows[0]["plan_id"] == 3  # the select sees the update before it
    new_id = result.results[1].rows[0]["id"]
    assert isinstance(new_id, int) and new_id > 160  # the new flag's key
    assert await plan_of(dbs, 1) == 3
    assert await _flags(dbs, "dark_mode") == 1
    assert await _ledger_rows(dbs) == 1


async def test_same_plan_twice_writes_once(dbs: Databases) -> None:
    input = _input(NEW_FLAG, UPGRADE)
    first = await _execute(dbs, input)
    second = await _execute(dbs, input)
    assert not first.replayed and second.replayed
    assert second.results == first.results and second.executed_at == first.executed_at
    assert await _flags(dbs, "dark_mode") == 1
    assert await _ledger_rows(dbs) == 1


async def test_same_plan_at_the_same_time_writes_once(dbs: Databases) -> None:
    input = _input(NEW_FLAG, UPGRADE)
    results = await asyncio.gather(*(_execute(dbs, input) for _ in range(2)))
    assert sorted(result.replayed for result in results) == [False, True]
    assert await _flags(dbs, "dark_mode") == 1
    assert await _ledger_rows(dbs) == 1


async def test_same_plan_in_another_workflow_runs_again(dbs: Databases) -> None:
    await _execute(dbs, _input(NEW_FLAG, workflow_id="ticket-a"))
    other = await _execute(dbs, _input(NEW_FLAG, workflow_id="ticket-b"))
    assert not other.replayed
    assert await _flags(dbs, "dark_mode") == 2


async def test_failing_operation_rolls_back_the_whole_plan(dbs: Databases) -> None:
    duplicate_email = InsertOperation(
        table="users",
        values=[
            Assignment(column="customer_id", value=1),
            Assignment(column="email", value="bob@acme-corp.example"),  # already taken (unique)
            Assignment(column="name", value="Bob"),
            Assignment(column="role", value="member"),
            Assignment(column="active", value=True),
            Assignment(column="created_at", value="2025-03-01T00:00:00Z"),
        ],
    )
    before_users = await _count(dbs.target_engine, select(func.count()).select_from(users))
    with pytest.raises(ApplicationError) as caught:
        await _execute(dbs, _input(UPGRADE, NEW_FLAG, duplicate_email))
    assert caught.value.non_retryable and caught.value.type == ERROR_OPERATION_FAILED
    assert "operation 2 (insert on users)" in caught.value.message and "rolled back" in caught.value.message
    assert await plan_of(dbs, 1) == 2
    assert await _flags(dbs, "dark_mode") == 0
    assert await _count(dbs.target_engine, select(func.count()).select_from(users)) == before_users
    assert await _ledger_rows(dbs) == 0


async def test_more_rows_than_approved_rolls_back(dbs: Databases) -> None:
    enable_all = UpdateOperation(
        table="feature_flags", values=[Assignment(column="enabled", value=True)], filters=[ACME]
    )
    before = await _enabled_flags_of_acme(dbs)
    assert len(before) == 4 and not all(before)
    with pytest.raises(ApplicationError) as caught:
        await _execute(dbs, _input(UPGRADE, enable_all, approved_rows=[1, 1]))
    assert caught.value.non_retryable and caught.value.type == ERROR_ROW_LIMIT
    assert "touched 4 rows but 1 were approved" in caught.value.message
    assert await _enabled_flags_of_acme(dbs) == before
    assert await plan_of(dbs, 1) == 2
    assert await _ledger_rows(dbs) == 0
    done = await _execute(dbs, _input(UPGRADE, enable_all, approved_rows=[1, 4]))
    assert done.rows_changed == 5 and all(await _enabled_flags_of_acme(dbs))


async def test_plan_hash_must_match(dbs: Databases) -> None:
    input = _input(UPGRADE).model_copy(update={"plan_hash": "0" * 16})
    with pytest.raises(ApplicationError) as caught:
        await _execute(dbs, input)
    assert caught.value.non_retryable and caught.value.type == ERROR_PLAN_HASH
    assert await plan_of(dbs, 1) == 2


@pytest.mark.parametrize(
    "operation",
    [
        DeleteOperation(table="feature_flags"),
        UpdateOperation(table="subscriptions", values=[Assignment(column="plan_id", value="pro")], filters=[ACME]),
        SelectOperation(table="agent_ticket_executions"),
    ],
)
async def test_invalid_operations_never_run(dbs: Databases, operation: Any) -> None:
    with pytest.raises(ApplicationError) as caught:
        await _execute(dbs, _input(UPGRADE, operation))
    assert caught.value.non_retryable and caught.value.type == ERROR_INVALID_OPERATION
    assert await plan_of(dbs, 1) == 2
    assert await _count(dbs.target_engine, select(func.count()).select_from(feature_flags)) == 160


async def test_at_most_two_round_trips_per_operation(dbs: Databases) -> None:
    input = _input(UPGRADE, NEW_FLAG, SelectOperation(table="plans"), approved_rows=[1])
    await _execute(dbs, input)  # reflects the schema once, outside the measurement
    second = _input(UPGRADE, NEW_FLAG, SelectOperation(table="plans"), workflow_id="ticket-t2", approved_rows=[1])
    with _statements(dbs.target_engine) as statements:
        await _execute(dbs, second)
    assert len(statements) <= 2 * len(second.plan.operations), statements
    with _statements(dbs.target_engine) as replay:
        assert (await _execute(dbs, second)).replayed
    assert len(replay) == 1  # a replay only reads the ledger


# ---------------------------------------------------------------- approvals bound to row keys (issue 13)


async def _report(dbs: Databases, *operations: Any, requester: str = "") -> SafetyReport:
    plan = Plan(summary="test", operations=list(operations))
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    report: SafetyReport = await ActivityEnvironment().run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan, requester=requester)
    )
    return report


def _bound(report: SafetyReport, *operations: Any, **fields: Any) -> ExecutePlanInput:
    """The execution input as the workflow builds it from the approved report."""
    return _input(*operations).model_copy(update={"approved_row_keys": report.approved_row_keys, **fields})


async def _roles(dbs: Databases, *ids: int) -> list[str]:
    async with dbs.target_engine.connect() as connection:
        query = select(users.c.role).where(users.c.id.in_(ids)).order_by(users.c.id)
        return list((await connection.scalars(query)).all())


def _executor(dbs: Databases) -> ExecutionActivities:
    return ExecutionActivities(dbs.target_engine, dev_authority(), PolicyCache(dbs.app_sessions))


async def test_rows_that_changed_since_approval_roll_back_and_ask_again(dbs: Databases) -> None:
    promote_zed = UpdateOperation(
        table="users",
        values=[Assignment(column="role", value="admin")],
        filters=[Filter(column="name", op="eq", value="Zed")],
    )
    async with dbs.target_engine.begin() as connection:
        await connection.execute(update(users).where(users.c.id == 3).values(name="Zed"))
    roles_before = await _roles(dbs, 3, 8)
    report = await _report(dbs, promote_zed)
    assert report.approved_row_keys == [["3"]]
    async with dbs.target_engine.begin() as connection:  # a concurrent writer renames another user Zed
        await connection.execute(update(users).where(users.c.id == 8).values(name="Zed"))
    with pytest.raises(ApplicationError) as caught:
        await run_in_its_workflow(_executor(dbs).execute_plan, _bound(report, promote_zed))
    assert caught.value.type == ERROR_APPROVED_ROWS_CHANGED and caught.value.non_retryable
    assert "would now also change row 8" in caught.value.message and "nothing was written" in caught.value.message
    assert await _roles(dbs, 3, 8) == roles_before
    assert await _ledger_rows(dbs) == 0


@pytest.mark.parametrize(
    ("table", "shown_key"),
    [
        ("CREATE TABLE sessions (token VARCHAR(64) PRIMARY KEY, user_id INTEGER NOT NULL)", "tok_live_"),
        ("CREATE TABLE sessions (token VARCHAR(64) NOT NULL, user_id INTEGER NOT NULL)", "tok_live_"),  # no key
    ],
    ids=["private-primary-key", "no-primary-key"],
)
async def test_rows_changed_since_approval_are_counted_not_named_when_their_key_is_private(
    dbs: Databases, table: str, shown_key: str
) -> None:
    """Red team 26: the refusal named the new row by its key, a private session token, in the status and audit."""
    async with dbs.target_engine.begin() as connection:
        await connection.execute(text(table))
        await connection.execute(text("INSERT INTO sessions VALUES ('tok_live_first', 3)"))
    policy = await PolicyCache(dbs.app_sessions).current()
    policy.tables["sessions"] = TablePolicy(operations=["select"], max_rows=50)
    await store_policy(dbs.app_sessions, policy)
    forget_reflection(dbs.target_engine)
    assert policy.private_columns("sessions", ["token", "user_id"]) == ["token"]  # the shipped *token* pattern
    sessions_of_3 = SelectOperation(
        table="sessions", columns=["user_id"], filters=[Filter(column="user_id", op="eq", value=3)]
    )
    report = await _report(dbs, sessions_of_3)
    async with dbs.target_engine.begin() as connection:  # user 3 signs in again before the plan runs
        await connection.execute(text("INSERT INTO sessions VALUES ('tok_live_SECRET_NEW', 3)"))
    with pytest.raises(ApplicationError) as caught:
        await run_in_its_workflow(_executor(dbs).execute_plan, _bound(report, sessions_of_3))
    assert caught.value.type == ERROR_APPROVED_ROWS_CHANGED
    assert "it would now also read 1 row;" in caught.value.message
    assert shown_key not in caught.value.message


async def test_new_rows_match_whatever_key_the_database_gives_them(dbs: Databases) -> None:
    enable_new = UpdateOperation(
        table="feature_flags",
        values=[Assignment(column="enabled", value=False)],
        filters=[Filter(column="name", op="eq", value="dark_mode")],
    )
    report = await _report(dbs, NEW_FLAG, enable_new)
    insert_only = await _report(dbs, NEW_FLAG)
    await _execute(dbs, _input(NEW_FLAG, workflow_id="ticket-other"))  # takes the id the dry runs saw
    with pytest.raises(ApplicationError) as caught:  # ... and a second dark_mode flag now matches the update
        await run_in_its_workflow(_executor(dbs).execute_plan, _bound(report, NEW_FLAG, enable_new))
    assert caught.value.type == ERROR_APPROVED_ROWS_CHANGED
    assert await _flags(dbs, "dark_mode") == 1
    result = await run_in_its_workflow(_executor(dbs).execute_plan, _bound(insert_only, NEW_FLAG))
    assert insert_only.approved_row_keys == [["new:0"]] and isinstance(result.results[0].rows[0]["id"], int)
    assert await _flags(dbs, "dark_mode") == 2


async def test_budget_is_charged_once_with_the_writes(databases: Databases) -> None:
    report = await _report(databases, UPGRADE, requester="dave")
    input = _bound(report, UPGRADE, requester="dave")
    first = await run_in_its_workflow(_executor(databases).execute_plan, input)
    again = await run_in_its_workflow(_executor(databases).execute_plan, input)
    assert not first.replayed and again.replayed
    async with databases.target_engine.connect() as connection:
        charges = (await connection.execute(select(budget_charges.c.requester, budget_charges.c.rows))).all()
    assert [tuple(row) for row in charges] == [("dave", 1)]
    approved = _bound(report, UPGRADE, requester="dave", approved_by=["alice"], workflow_id="ticket-t9")
    await run_in_its_workflow(_executor(databases).execute_plan, approved)
    assert await _count(databases.target_engine, select(func.count()).select_from(budget_charges)) == 1


async def test_a_budget_spent_since_validation_asks_again(databases: Databases) -> None:
    report = await _report(databases, UPGRADE, requester="dave")
    async with databases.target_engine.begin() as connection:
        await charge(connection, "dave", "ticket-other", "0" * 16, 20, datetime.now(UTC))
    with pytest.raises(ApplicationError) as caught:
        await run_in_its_workflow(_executor(databases).execute_plan, _bound(report, UPGRADE, requester="dave"))
    assert caught.value.type == ERROR_APPROVED_ROWS_CHANGED and "budget of 20" in caught.value.message
    assert await plan_of(databases, 1) == 2


async def test_private_values_read_without_approval_are_masked_at_the_source(databases: Databases) -> None:
    read = SelectOperation(table="users", columns=["id", "email"], filters=[ACME], limit=2)
    unapproved = await run_in_its_workflow(_executor(databases).execute_plan, _input(read))
    assert [row["email"] for row in unapproved.results[0].rows] == [MASK, MASK]
    approved = _input(read, workflow_id="ticket-t2").model_copy(update={"approved_by": ["alice", "bob"]})
    shown = await run_in_its_workflow(_executor(databases).execute_plan, approved)
    assert all(str(row["email"]).endswith("@acme-corp.example") for row in shown.results[0].rows)
