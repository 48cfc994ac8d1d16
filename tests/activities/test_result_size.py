"""Step results fit in workflow history whatever the target holds (red team 25).

A 300 KB text value in each of ten rows made the dry run's report 3 MB: Temporal refused it, and the
ticket sat at `validating` for good; the same rows read by an executed plan ended a committed ticket
`failed`. Previews and results are cut and bounded at the source instead; counts stay true.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.dry_run import MAX_KEYED_ROWS
from activities.execution import ExecutionActivities
from activities.plan_runner import DIGEST_PREFIX, MAX_KEY_CHARS, key_of
from activities.planning import ERROR_PLAN_TOO_LARGE
from activities.result_size import MAX_READ_CHARS, MAX_RESULT_BYTES, MAX_SHOWN_CHARS, model_bytes
from activities.revert import RevertActivities
from activities.safety import SafetyActivities
from activities.sql import forget_reflection
from core.bootstrap import Databases
from core.models import (
    Assignment,
    ExecutePlanInput,
    ExecutionResult,
    Filter,
    InsertOperation,
    Plan,
    PlanRevertInput,
    RevertOf,
    Risk,
    SafetyReport,
    SelectOperation,
    UpdateOperation,
    ValidatePlanInput,
)
from core.policy import PolicyCache, TablePolicy, store_policy
from tests.support import dev_authority, run_in_its_workflow

BIG = 300_000


async def _listed(dbs: Databases, name: str, table: TablePolicy) -> None:
    """`name`, just created in the target, listed in the policy as `table`, and the schema read again."""
    policy = await PolicyCache(dbs.app_sessions).current()
    policy.tables[name] = table
    policy.limits.max_rows_returned = 1000
    await store_policy(dbs.app_sessions, policy)
    forget_reflection(dbs.target_engine)


async def _notes_table(dbs: Databases, rows: int, *, key: str = "INTEGER PRIMARY KEY") -> None:
    """`notes(id, body, extra)` listed in the policy for selects and updates; the first 100 of its `rows`
    rows hold 300 KB in each text column, the others a word."""
    async with dbs.target_engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE notes (id {key}, body TEXT NOT NULL, extra TEXT NOT NULL)"))
        for start in range(1, rows + 1, 100):
            await connection.execute(
                text("INSERT INTO notes (id, body, extra) VALUES (:id, :body, :body)"),
                [
                    {"id": i, "body": "n" * BIG if i <= 100 else "short"}
                    for i in range(start, min(start + 100, rows + 1))
                ],
            )
    await _listed(dbs, "notes", TablePolicy(operations=["select", "update"], max_rows=2000))


async def _validated(dbs: Databases, *operations: Any) -> SafetyReport:
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    plan = Plan(summary="notes", operations=list(operations))
    report: SafetyReport = await ActivityEnvironment().run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan)
    )
    return report


async def _executed(dbs: Databases, report: SafetyReport, operation: Any, approvers: list[str]) -> ExecutionResult:
    """The one-operation plan run as the workflow runs it once `approvers` approved `report`."""
    executor = ExecutionActivities(dbs.target_engine, dev_authority(), PolicyCache(dbs.app_sessions))
    result: ExecutionResult = await run_in_its_workflow(
        executor.execute_plan,
        ExecutePlanInput(
            ticket_id="t1",
            workflow_id="ticket-t1",
            plan=Plan(summary="notes", operations=[operation]),
            plan_hash=report.plan_hash,
            approved_row_keys=report.approved_row_keys,
            approved_versions=[impact.rows_version for impact in report.impacts],
            approved_by=approvers,
        ),
    )
    return result


def _ten_notes() -> Filter:
    return Filter(column="id", op="in", value=list(range(1, 11)))


async def test_a_dry_run_of_huge_values_reports_them_cut_and_within_the_bound(dbs: Databases) -> None:
    await _notes_table(dbs, 40)
    report = await _validated(
        dbs, UpdateOperation(table="notes", values=[Assignment(column="body", value="x")], filters=[_ten_notes()])
    )
    assert model_bytes(report) <= MAX_RESULT_BYTES
    impact = report.impacts[0]
    assert impact.rows_affected == 10 and len(impact.row_keys) == 10
    before = impact.preview[0].before or {}
    assert len(str(before["body"])) == MAX_SHOWN_CHARS and str(before["body"]).endswith("…")


async def test_an_executed_read_of_huge_values_returns_them_cut_and_within_the_bound(dbs: Databases) -> None:
    await _notes_table(dbs, 200)  # 100 rows of 2 x 4,000 characters shown: more than the bound
    read_all = SelectOperation(table="notes", columns=["id", "body", "extra"], filters=[], limit=100)
    report = await _validated(dbs, read_all)
    result = await _executed(dbs, report, read_all, ["alice"])
    assert model_bytes(result) <= MAX_RESULT_BYTES
    shown = result.results[0]
    assert shown.rows_affected == 100 and 0 < len(shown.rows) < 100  # the count says how many are not shown
    assert all(len(str(row["body"])) <= MAX_READ_CHARS for row in shown.rows)


async def test_long_text_keys_are_named_by_a_digest(dbs: Databases) -> None:
    async with dbs.target_engine.begin() as connection:
        await connection.execute(text("CREATE TABLE tags (label TEXT PRIMARY KEY, note TEXT)"))
        await connection.execute(text("INSERT INTO tags VALUES (:label, 'x')"), {"label": "t" * 5000})
    await _listed(dbs, "tags", TablePolicy(operations=["select"], max_rows=10))
    report = await _validated(dbs, SelectOperation(table="tags", columns=["note"], filters=[]))
    [key] = report.impacts[0].row_keys
    assert key.startswith("sha256:") and len(key) <= MAX_KEY_CHARS


async def test_an_update_of_more_rows_than_can_be_approved_one_by_one_is_blocked_without_its_keys(
    dbs: Databases,
) -> None:
    await _notes_table(dbs, MAX_KEYED_ROWS + 60)
    everything = UpdateOperation(
        table="notes", values=[Assignment(column="body", value="x")], filters=[Filter(column="id", op="gt", value=0)]
    )
    report = await _validated(dbs, everything)
    assert report.risk is Risk.BLOCKED
    assert any(f"more than {MAX_KEYED_ROWS} cannot be approved" in finding.message for finding in report.findings)
    assert model_bytes(report) <= MAX_RESULT_BYTES


def test_a_key_spelled_like_a_digest_or_a_new_row_cannot_stand_for_another_row() -> None:
    """Red team 28: a row keyed `sha256:<digest of another row's long key>` shared that row's key, and an
    update changed both with the approval of one."""
    long = "zz/" + "a" * 80
    digest = key_of([long])
    assert digest.startswith(DIGEST_PREFIX) and len(digest) <= MAX_KEY_CHARS
    assert key_of([digest]) != digest
    assert key_of(["new:0"]) != "new:0"  # the name of the plan's first inserted row
    assert key_of([12]) == "12" and key_of(["acme"]) == '"acme"' and key_of([1, "a"]) == '[1,"a"]'


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ([b"\x01\x02\x03\x04"], [b"\x05\x06\x07\x08"]),  # both were "<4 bytes>"
        ([None], ["None"]),
        ([1], ["1"]),  # a column SQLite gives no type holds both
        ([1], [1.0]),
        ([1], [True]),
        ([1, None], [1, "None"]),
    ],
)
def test_keys_of_different_values_differ_whatever_their_type(one: list[Any], other: list[Any]) -> None:
    """Red team 29: spelled through `to_scalar`, these named different rows alike."""
    assert key_of(one) != key_of(other)


@pytest.mark.parametrize(
    "rows",
    [
        "(NULL, 'mallory', 'a'), (NULL, 'mallory', 'b')",  # SQLite lets a text key be NULL, twice
        "(NULL, 'mallory', 'a'), ('None', 'mallory', 'b')",
    ],
)
async def test_a_write_to_rows_without_a_key_of_their_own_is_blocked(databases: Databases, rows: str) -> None:
    async with databases.target_engine.begin() as connection:
        await connection.execute(text("CREATE TABLE documents (path TEXT PRIMARY KEY, owner TEXT, title TEXT)"))
        await connection.execute(text(f"INSERT INTO documents VALUES {rows}"))
    await _listed(
        databases, "documents", TablePolicy(operations=["select", "update", "insert"], max_rows=10, auto_approve_rows=5)
    )
    archive = UpdateOperation(
        table="documents",
        values=[Assignment(column="title", value="archived")],
        filters=[Filter(column="owner", op="eq", value="mallory")],
    )
    report = await _validated(databases, archive)
    assert report.risk is Risk.BLOCKED, report.findings
    new_document = InsertOperation(table="documents", values=[Assignment(column="owner", value="eve")])
    assert (await _validated(databases, new_document)).risk is Risk.BLOCKED


async def test_a_revert_of_a_change_too_large_to_record_is_refused_with_the_reason(dbs: Databases) -> None:
    """Red team 28: the inverse of 100 rows of 27 KB values was a 2.7 MB revert plan, and the revert ticket
    sat at `validating` for good."""
    await _notes_table(dbs, 100)
    async with dbs.target_engine.begin() as connection:
        # A value of its own in each row: rows holding one value are put back by one operation.
        await connection.execute(text("UPDATE notes SET body = id || :body"), {"body": ":" + "文" * 9000})
    every_note = Filter(column="id", op="le", value=100)
    archive = UpdateOperation(table="notes", values=[Assignment(column="body", value="archived")], filters=[every_note])
    report = await _validated(dbs, archive)
    await _executed(dbs, report, archive, ["alice", "bob"])
    reverts = RevertActivities(dbs.target_engine, PolicyCache(dbs.app_sessions))
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            reverts.plan_revert, PlanRevertInput(ticket_id="t2", reverts=RevertOf(workflow_id="ticket-t1"))
        )
    assert caught.value.type == ERROR_PLAN_TOO_LARGE and caught.value.non_retryable


@pytest.mark.parametrize("key", ["DATE", "NUMERIC(10, 2)", "BOOLEAN"])
async def test_a_write_to_a_table_keyed_by_a_type_read_back_inexactly_is_blocked(dbs: Databases, key: str) -> None:
    """Red team 30: SQLite read '2024-01-01' and '2024-W01-1' back as one date, PostgreSQL 'infinity' and
    '9999-12-31' alike; two rows then counted, and were approved, as one."""
    async with dbs.target_engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE holidays (day {key} PRIMARY KEY, owner TEXT, name TEXT)"))
    await _listed(dbs, "holidays", TablePolicy(operations=["select", "update"], max_rows=10, auto_approve_rows=5))
    rename = UpdateOperation(
        table="holidays",
        values=[Assignment(column="name", value="renamed")],
        filters=[Filter(column="owner", op="eq", value="mallory")],
    )
    report = await _validated(dbs, rename)
    assert report.risk is Risk.BLOCKED
    assert any("read back inexactly" in finding.message for finding in report.findings)
    read = SelectOperation(table="holidays", columns=["name"], filters=[])
    assert (await _validated(dbs, read)).risk is not Risk.BLOCKED  # reading it stays possible


async def test_a_write_to_a_postgres_table_others_inherit_from_is_blocked(pg_databases: Databases) -> None:
    """Red team 31: the parent's key does not cover a child's rows, which its queries reach: row 1 of the
    parent and row 1 of the child counted, and were approved, as one."""
    async with pg_databases.target_engine.begin() as connection:
        await connection.execute(text("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, note TEXT)"))
        await connection.execute(text("CREATE TABLE accounts_archive () INHERITS (accounts)"))
        await connection.execute(text("INSERT INTO accounts VALUES (1, 'mallory', 'm')"))
        await connection.execute(text("INSERT INTO accounts_archive VALUES (1, 'bob', 'b')"))
    await _listed(
        pg_databases, "accounts", TablePolicy(operations=["select", "update"], max_rows=10, auto_approve_rows=5)
    )
    edit = UpdateOperation(
        table="accounts",
        values=[Assignment(column="note", value="edited")],
        filters=[Filter(column="id", op="eq", value=1)],
    )
    report = await _validated(pg_databases, edit)
    assert report.risk is Risk.BLOCKED
    assert any("inherit from accounts" in finding.message for finding in report.findings)
