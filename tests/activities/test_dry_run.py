"""The dry run of the whole plan, in order: row keys, per-row diffs, the database's refusals, limits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities import plan_limits, value_rules
from activities import safety_rules as rules
from activities.budget import charge
from activities.safety import SafetyActivities
from activities.statement_timeout import is_timeout, statement_timeout
from core.bootstrap import Databases
from core.masking import MASK
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    InsertOperation,
    Plan,
    Risk,
    SafetyReport,
    SelectOperation,
    UpdateOperation,
    ValidatePlanInput,
)
from core.policy import PolicyCache, TablePolicy, store_policy
from core.settings import Settings
from tests.activities.conftest import activity_env, target_file
from tests.support import dev_authority

from .test_safety import POLICY

ACME = Filter(column="customer_id", op="eq", value=1)


def _set(**values: Any) -> list[Assignment]:
    return [Assignment(column=name, value=value) for name, value in values.items()]


def _id(value: int) -> list[Filter]:
    return [Filter(column="id", op="eq", value=value)]


async def _validate(dbs: Databases, *operations: Any, requester: str = "", **plan: Any) -> SafetyReport:
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    report: SafetyReport = await ActivityEnvironment().run(
        activities.validate_plan,
        ValidatePlanInput(
            ticket_id="t1", plan=Plan(summary="test", operations=list(operations), **plan), requester=requester
        ),
    )
    return report


def _rules(report: SafetyReport) -> dict[str, Risk]:
    found: dict[str, Risk] = {}
    for finding in report.findings:
        if finding.rule not in found or finding.risk.rank > found[finding.rule].rank:
            found[finding.rule] = finding.risk
    return found


async def _scalar(dbs: Databases, query: str) -> Any:
    async with dbs.target_engine.connect() as connection:
        return await connection.scalar(text(query))


async def test_each_operation_sees_the_ones_before_it(dbs: Databases) -> None:
    """Rename two users, then promote "the user named Zed": the preview names the row that would really change."""
    report = await _validate(
        dbs,
        UpdateOperation(table="users", values=_set(name="Zed"), filters=_id(3)),
        UpdateOperation(table="users", values=_set(name="Carol"), filters=_id(7)),
        UpdateOperation(
            table="users", values=_set(role="admin"), filters=[Filter(column="name", op="eq", value="Zed")]
        ),
    )
    assert [impact.row_keys for impact in report.impacts] == [["3"], ["7"], ["3"]]
    [promotion] = report.impacts[2].preview
    assert promotion.key == "3" and promotion.before is not None and promotion.before["name"] == "Zed"
    assert promotion.after is not None and promotion.after["role"] == "admin"
    assert report.approved_row_keys == [["3"], ["7"], ["3"]]
    assert await _scalar(dbs, "SELECT count(*) FROM users WHERE name = 'Zed'") == 0  # rolled back


async def test_a_row_the_plan_inserts_is_named_by_its_operation(dbs: Databases) -> None:
    report = await _validate(
        dbs,
        InsertOperation(table="feature_flags", values=_set(customer_id=1, name="dark_mode", enabled=False)),
        UpdateOperation(
            table="feature_flags",
            values=_set(enabled=True),
            filters=[Filter(column="name", op="eq", value="dark_mode")],
        ),
    )
    assert [impact.row_keys for impact in report.impacts] == [["new:0"], ["new:0"]]
    assert report.risk is Risk.LOW  # one distinct row, of one tenant
    assert await _scalar(dbs, "SELECT count(*) FROM feature_flags WHERE name = 'dark_mode'") == 0


@pytest.mark.parametrize(
    "operation",
    [
        InsertOperation(table="feature_flags", values=_set(customer_id=999, name="sso", enabled=True)),
        UpdateOperation(table="subscriptions", values=_set(plan_id=99), filters=_id(1)),
    ],
    ids=["flag of a missing customer", "subscription to a missing plan"],
)
async def test_a_dangling_foreign_key_is_blocked_with_the_databases_reason(dbs: Databases, operation: Any) -> None:
    report = await _validate(dbs, operation)
    assert report.risk is Risk.BLOCKED
    [refusal] = [finding for finding in report.findings if finding.rule == rules.RULE_DATABASE_REFUSED]
    assert "foreign key" in refusal.message.lower()
    assert "refers to a row that does not exist" in refusal.message
    assert refusal.operation_index == 0


async def test_a_unique_value_taken_is_blocked_in_words(dbs: Databases) -> None:
    report = await _validate(
        dbs,
        InsertOperation(
            table="users",
            values=_set(customer_id=1, email="bob@acme-corp.example", name="Bob", role="member", active=True),
        ),
    )
    [refusal] = [finding for finding in report.findings if finding.rule == rules.RULE_DATABASE_REFUSED]
    assert "already exists" in refusal.message


async def test_removing_a_row_others_refer_to_is_blocked(databases: Databases) -> None:
    from core.policy import read_policy, store_policy

    policy = await read_policy(databases.app_sessions)
    policy.tables["customers"].operations.append("delete")
    await store_policy(databases.app_sessions, policy)
    report = await _validate(databases, DeleteOperation(table="customers", filters=_id(1)))
    assert _rules(report)[rules.RULE_DATABASE_REFUSED] is Risk.BLOCKED


async def test_splitting_counts_each_distinct_row_once_over_the_plan(databases: Databases) -> None:
    one_flag_each = [
        UpdateOperation(table="feature_flags", values=_set(enabled=True), filters=_id(flag)) for flag in (1, 2, 3, 4)
    ]
    report = await _validate(databases, *one_flag_each)
    assert report.risk is Risk.MEDIUM  # four rows of acme-corp, one at a time
    assert _rules(report)[plan_limits.RULE_PLAN_ROWS] is Risk.MEDIUM
    same_flag_twice = [
        UpdateOperation(table="feature_flags", values=_set(enabled=flag), filters=_id(1)) for flag in (True, False)
    ]
    assert (await _validate(databases, *same_flag_twice)).risk is Risk.LOW


async def test_rows_across_tables_count_towards_the_plan_total(databases: Databases) -> None:
    report = await _validate(
        databases,
        UpdateOperation(table="subscriptions", values=_set(seats=3), filters=_id(1)),
        UpdateOperation(table="feature_flags", values=_set(enabled=True), filters=_id(1)),
    )
    assert report.risk is Risk.MEDIUM and report.required_approvals == 1


async def test_private_columns_need_approval_to_read_and_are_masked_in_the_preview(databases: Databases) -> None:
    read = await _validate(databases, SelectOperation(table="users", columns=["id", "email"], limit=5))
    assert _rules(read)[rules.RULE_PRIVATE_READ] is Risk.MEDIUM
    assert read.private_columns == {"users": ["email"]}
    probe = await _validate(
        databases,
        UpdateOperation(
            table="users", values=_set(active=True), filters=[Filter(column="email", op="like", value="a%")]
        ),
    )
    assert _rules(probe)[rules.RULE_PRIVATE_PROBE] is Risk.MEDIUM
    rename = await _validate(
        databases,
        UpdateOperation(table="customers", values=_set(billing_email="ap@acme.example"), filters=_id(1)),
    )
    [change] = rename.impacts[0].preview
    assert change.before == {"id": 1, "billing_email": MASK}
    assert change.after == {"id": 1, "billing_email": "ap@acme.example"}


async def test_rows_returned_by_the_whole_plan_are_capped(databases: Databases) -> None:
    reads = [
        SelectOperation(table="invoices", columns=["id"], limit=50, filters=[Filter(column="id", op="gt", value=n)])
        for n in (0, 50, 100)
    ]
    report = await _validate(databases, *reads)
    assert _rules(report)[plan_limits.RULE_ROWS_RETURNED] is Risk.BLOCKED


@pytest.mark.parametrize(
    ("operation", "rule"),
    [
        (UpdateOperation(table="subscriptions", values=_set(seats=0), filters=_id(1)), value_rules.RULE_VALUE_RULE),
        (UpdateOperation(table="users", values=_set(role="root"), filters=_id(1)), value_rules.RULE_VALUE_RULE),
        (
            UpdateOperation(table="customers", values=_set(name="Acme\u202eproC"), filters=_id(1)),
            value_rules.RULE_HIDDEN_CHARACTER,
        ),
        (UpdateOperation(table="feature_flags", values=_set(customer_id=2), filters=_id(1)), rules.RULE_TENANT_MOVE),
        (UpdateOperation(table="users", values=_set(id=9999), filters=_id(1)), rules.RULE_PROTECTED_COLUMN),
    ],
    ids=["seats below 1", "unknown role", "bidi override", "tenant move", "primary key"],
)
async def test_bad_values_and_moves_are_blocked(databases: Databases, operation: Any, rule: str) -> None:
    report = await _validate(databases, operation)
    assert report.risk is Risk.BLOCKED and _rules(report)[rule] is Risk.BLOCKED


async def test_plan_prose_with_hidden_characters_is_blocked(databases: Databases) -> None:
    upgrade = UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=_id(1))
    report = await _validate(databases, upgrade, rationale="upgrade \u200bfree of charge")
    assert _rules(report)[value_rules.RULE_HIDDEN_CHARACTER] is Risk.BLOCKED


async def test_foreign_keys_other_than_ordinary_ones_are_high(databases: Databases) -> None:
    """plan_id points at the shared price list (ordinary); a user's customer_id at a tenant."""
    upgrade = await _validate(databases, UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=_id(1)))
    assert upgrade.risk is Risk.LOW
    policy = POLICY.model_copy(deep=True)
    policy.tables["subscriptions"].ordinary_foreign_keys = []
    findings = rules.check_references(
        0,
        UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=_id(1)),
        policy,
        {"subscriptions": rules.TableShape(columns=frozenset({"id", "plan_id"}), foreign_keys=frozenset({"plan_id"}))},
    )
    assert [(finding.rule, finding.risk) for finding in findings] == [(rules.RULE_FOREIGN_KEY, Risk.HIGH)]


async def test_the_requesters_budget_of_unapproved_rows(databases: Databases) -> None:
    upgrade = UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=_id(1))
    assert (await _validate(databases, upgrade, requester="dave")).risk is Risk.LOW
    async with databases.target_engine.begin() as connection:
        await charge(connection, "dave", "ticket-old", "0" * 16, POLICY.limits.requester_budget_rows, datetime.now(UTC))
    spent = await _validate(databases, upgrade, requester="dave")
    assert spent.risk is Risk.MEDIUM and _rules(spent)[plan_limits.RULE_BUDGET] is Risk.MEDIUM
    assert (await _validate(databases, upgrade, requester="erin")).risk is Risk.LOW  # a budget per requester


async def test_statement_timeout_stops_a_slow_statement(dbs: Databases) -> None:
    slow = (
        "SELECT pg_sleep(2)"
        if dbs.target_engine.dialect.name == "postgresql"
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM (SELECT x FROM c LIMIT 100000000)"
    )
    started = time.monotonic()
    async with dbs.target_engine.connect() as connection:
        await connection.begin()
        with pytest.raises(sa_exc.DBAPIError) as caught:
            async with statement_timeout(connection, 50):
                await connection.execute(text(slow))
        await connection.rollback()
        assert await connection.scalar(text("SELECT 1")) == 1  # the connection is fine afterwards
    assert is_timeout(caught.value)
    assert time.monotonic() - started < 1.5


async def test_a_ten_operation_plan_is_judged_operation_by_operation(databases: Databases) -> None:
    """The plan the dry-run benchmark times (bench/database.py: p50 target 20 ms); timed there, not here."""
    plan = (
        [UpdateOperation(table="feature_flags", values=_set(enabled=True), filters=_id(n)) for n in range(1, 5)]
        + [SelectOperation(table="plans", limit=5)]
        + [UpdateOperation(table="subscriptions", values=_set(seats=n + 1), filters=_id(1)) for n in range(4)]
        + [InsertOperation(table="feature_flags", values=_set(customer_id=1, name="dark_mode", enabled=True))]
    )
    assert len(plan) == 10
    report = await _validate(databases, *plan, requester="dave")
    assert len(report.impacts) == 10


async def test_a_dry_run_that_waited_for_the_write_lock_is_not_judged_too_expensive(
    databases: Databases, settings: Settings
) -> None:
    """Under a burst, the wait for another dry run's lock is not this plan's run time (bench/notes.md, item 39)."""
    bulk = sqlite3.connect(target_file(settings), isolation_level=None)
    bulk.execute("CREATE TABLE bulk (id INTEGER PRIMARY KEY, customer_id INTEGER, flag INTEGER)")
    bulk.executemany("INSERT INTO bulk (customer_id, flag) VALUES (?, 0)", [(n,) for n in range(5000)])
    bulk.close()  # a scan of it takes the progress handler past its first check
    policy = await PolicyCache(databases.app_sessions).current()
    policy.tables["bulk"] = TablePolicy(operations=["select", "update"], max_rows=10, auto_approve_rows=5)
    await store_policy(databases.app_sessions, policy)
    flag = UpdateOperation(table="bulk", values=[Assignment(column="flag", value=1)], filters=[ACME])
    activities = SafetyActivities(databases.app_sessions, databases.target_engine, dev_authority())
    validate = ValidatePlanInput(ticket_id="t1", plan=Plan(summary="flag one", operations=[flag]))
    env = activity_env("validate")
    first = await env.run(activities.validate_plan, validate)
    assert first.rows_affected == 1
    limit_ms = (await PolicyCache(databases.app_sessions).current()).limits.dry_run_timeout_ms

    holder = sqlite3.connect(target_file(settings), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another dry run holds the lock longer than the dry-run limit
    validating = asyncio.create_task(env.run(activities.validate_plan, validate))
    await asyncio.sleep(limit_ms / 1000 + 0.5)
    holder.execute("ROLLBACK")
    holder.close()
    report = await validating
    assert report.risk is first.risk and report.rows_affected == first.rows_affected
    assert not [finding for finding in report.findings if "took longer than" in finding.message]
