"""A plan is judged on the target's tables as they are, not as they were when the worker first read them.

The schema is reflected once per worker and cached; each validation first reads the shape of the
plan's tables from the catalog (one query) and reflects again when any changed. Red team 32: a
table inherited from after the worker started passed as a plain table, so a write to it reached the
child's rows under the parent's key, approved as fewer rows than it changed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError

from activities.dry_run import SchemaChangedWhileJudged
from activities.execution import ExecutionActivities
from activities.safety import SafetyActivities
from activities.sql import reflect_target
from core.bootstrap import Databases
from core.models import (
    Assignment,
    ExecutePlanInput,
    ExecutionResult,
    Filter,
    Plan,
    Risk,
    SafetyReport,
    UpdateOperation,
    ValidatePlanInput,
)
from core.names import ERROR_APPROVED_ROWS_CHANGED
from core.policy import PolicyCache, TablePolicy, store_policy
from tests.activities.conftest import activity_env
from tests.support import dev_authority, run_in_its_workflow


async def _listed(dbs: Databases, name: str) -> None:
    policy = await PolicyCache(dbs.app_sessions).current()
    policy.tables[name] = TablePolicy(operations=["select", "update"], max_rows=10, auto_approve_rows=5)
    await store_policy(dbs.app_sessions, policy)


async def _validated(dbs: Databases, operation: Any) -> SafetyReport:
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    plan = _plan(operation)
    report: SafetyReport = await activity_env("validate").run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan)
    )
    return report


async def _run_approved(dbs: Databases, report: SafetyReport, operation: Any) -> ExecutionResult:
    """The one-operation plan run as the workflow runs it once `report` was approved."""
    executor = ExecutionActivities(dbs.target_engine, dev_authority(), PolicyCache(dbs.app_sessions))
    approved = ExecutePlanInput(
        ticket_id="t1",
        workflow_id="ticket-t1",
        plan=_plan(operation),
        plan_hash=report.plan_hash,
        approved_rows=[impact.rows_affected for impact in report.impacts],
        approved_row_keys=report.approved_row_keys,
        approved_versions=[impact.rows_version for impact in report.impacts],
        schema_digest=report.schema_digest,
        judgement=report.judgement,
    )
    result: ExecutionResult = await run_in_its_workflow(executor.execute_plan, approved)
    return result


def _plan(operation: Any) -> Plan:
    return Plan(summary="schema", operations=[operation])


def _note_on(table: str, key_column: str, key: Any) -> UpdateOperation:
    return UpdateOperation(
        table=table,
        values=[Assignment(column="note", value="edited")],
        filters=[Filter(column=key_column, op="eq", value=key)],
    )


async def _ddl(dbs: Databases, *statements: str) -> None:
    async with dbs.target_engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_table_inherited_from_after_the_schema_was_read_is_blocked(pg_databases: Databases) -> None:
    await _ddl(
        pg_databases,
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, note TEXT)",
        "INSERT INTO accounts VALUES (1, 'mallory', 'm')",
    )
    await _listed(pg_databases, "accounts")
    assert (await _validated(pg_databases, _note_on("accounts", "id", 1))).risk is not Risk.BLOCKED

    await _ddl(
        pg_databases,
        "CREATE TABLE accounts_archive () INHERITS (accounts)",
        "INSERT INTO accounts_archive VALUES (1, 'bob', 'b')",
    )
    report = await _validated(pg_databases, _note_on("accounts", "id", 1))
    assert report.risk is Risk.BLOCKED
    assert any("inherit from accounts" in finding.message for finding in report.findings)


async def test_a_key_retyped_after_the_schema_was_read_is_judged_by_its_new_type(databases: Databases) -> None:
    """SQLite: the same table and column names, the key now a DATE, which the driver reads back inexactly."""
    await _ddl(databases, "CREATE TABLE days (day TEXT PRIMARY KEY, note TEXT)", "INSERT INTO days VALUES ('d1', 'x')")
    await _listed(databases, "days")
    assert (await _validated(databases, _note_on("days", "day", "d1"))).risk is not Risk.BLOCKED

    await _ddl(
        databases,
        "DROP TABLE days",
        "CREATE TABLE days (day DATE PRIMARY KEY, note TEXT)",
        "INSERT INTO days VALUES ('2024-01-01', 'x')",
    )
    report = await _validated(databases, _note_on("days", "day", "2024-01-01"))
    assert report.risk is Risk.BLOCKED
    assert any("read back inexactly" in finding.message for finding in report.findings)


async def test_the_schema_is_read_again_only_when_a_plan_table_changed(dbs: Databases) -> None:
    await _ddl(dbs, "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, note TEXT)")
    first = await reflect_target(dbs.target_engine, {"gadgets"})
    assert await reflect_target(dbs.target_engine, {"gadgets"}) is first
    # A table no catalog has (an LLM's invention) is refused later; it does not make every check reflect again.
    assert await reflect_target(dbs.target_engine, {"gadgets", "no_such_table"}) is first

    await _ddl(dbs, "ALTER TABLE gadgets ADD COLUMN colour TEXT")
    assert await reflect_target(dbs.target_engine) is first  # no tables named: the cached schema, unchecked
    changed = await reflect_target(dbs.target_engine, {"gadgets"})
    assert changed is not first
    assert "colour" in changed.tables["gadgets"].columns
    assert await reflect_target(dbs.target_engine, {"gadgets"}) is changed


async def test_a_plan_approved_before_a_table_was_inherited_from_writes_nothing(pg_databases: Databases) -> None:
    """The execution runs on the schema it was judged on; its checks in the transaction see the child's row
    under the same key and refuse the whole plan."""
    await _ddl(
        pg_databases,
        "CREATE TABLE ledgers (id INTEGER PRIMARY KEY, owner TEXT, note TEXT)",
        "INSERT INTO ledgers VALUES (1, 'mallory', 'm')",
    )
    await _listed(pg_databases, "ledgers")
    edit = _note_on("ledgers", "id", 1)
    report = await _validated(pg_databases, edit)
    assert report.risk is not Risk.BLOCKED
    await _ddl(
        pg_databases,
        "CREATE TABLE ledgers_archive () INHERITS (ledgers)",
        "INSERT INTO ledgers_archive VALUES (1, 'bob', 'b')",
    )
    with pytest.raises(ApplicationError) as refused:
        await _run_approved(pg_databases, report, edit)
    assert "rows that have no key of their own" in refused.value.message
    assert refused.value.non_retryable
    async with pg_databases.target_engine.connect() as connection:
        notes = (await connection.execute(text("SELECT note FROM ledgers ORDER BY note"))).scalars().all()
    assert notes == ["b", "m"]


def _set_ref(key: int, ref: int) -> UpdateOperation:
    return UpdateOperation(
        table="accounts",
        values=[Assignment(column="ref", value=ref)],
        filters=[Filter(column="id", op="eq", value=key)],
    )


async def _accounts_with_parents(dbs: Databases) -> None:
    await _ddl(
        dbs,
        "CREATE TABLE parents (id INTEGER PRIMARY KEY)",
        "INSERT INTO parents VALUES (1), (2)",
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, ref INTEGER, note TEXT)",
        "INSERT INTO accounts VALUES (1, 1, 'a')",
    )
    await _listed(dbs, "accounts")


async def test_a_migration_that_a_dry_run_waited_for_has_the_plan_judged_again(pg_databases: Databases) -> None:
    """Red team 38: the shape check read the committed catalog, then the dry run's update waited for an ALTER's
    lock and ran on the altered table: judged low (no approval) where the new foreign key makes it high."""
    dbs = pg_databases
    await _accounts_with_parents(dbs)
    assert (await _validated(dbs, _set_ref(1, 2))).risk is Risk.LOW
    async with dbs.target_engine.connect() as migration:
        await migration.begin()
        await migration.execute(text("ALTER TABLE accounts ADD FOREIGN KEY (ref) REFERENCES parents (id)"))
        judging = asyncio.create_task(_validated(dbs, _set_ref(1, 2)))
        await asyncio.sleep(0.5)  # within the dry run's 2 s: its update waits for the migration's lock
        await migration.commit()
    with pytest.raises(SchemaChangedWhileJudged):
        await judging
    assert (await _validated(dbs, _set_ref(1, 2))).risk is Risk.HIGH  # the retry judges the new definition


async def test_a_plan_approved_before_a_migration_is_judged_again(dbs: Databases) -> None:
    """The execution runs only on the definitions its signed judgement names: a cascading key added since
    approval would change rows nobody approved."""
    await _accounts_with_parents(dbs)
    edit = _set_ref(1, 2)
    report = await _validated(dbs, edit)
    assert report.risk is Risk.LOW and report.schema_digest
    await _ddl(dbs, "CREATE TABLE notes (id INTEGER PRIMARY KEY, account INTEGER REFERENCES accounts (id))")
    if dbs.target_engine.dialect.name == "postgresql":  # SQLite counts any schema change, this one included
        await _ddl(dbs, "ALTER TABLE accounts ADD COLUMN extra TEXT")
    with pytest.raises(ApplicationError) as refused:
        await _run_approved(dbs, report, edit)
    assert refused.value.type == ERROR_APPROVED_ROWS_CHANGED
    assert "altered since approval" in refused.value.message
    async with dbs.target_engine.connect() as connection:
        assert await connection.scalar(text("SELECT ref FROM accounts WHERE id = 1")) == 1
