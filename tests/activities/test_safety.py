"""The safety check: each rule on its own, then `validate_plan` against seeded databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities import plan_limits
from activities import safety_rules as rules
from activities.safety import SafetyActivities, target_shape
from activities.sql import set_read_only
from core.bootstrap import Databases
from core.demo import demo_metadata
from core.ledger import LEDGER_TABLE
from core.masking import MASK
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    Finding,
    InsertOperation,
    Plan,
    Risk,
    SafetyReport,
    SelectOperation,
    UpdateOperation,
    ValidatePlanInput,
    plan_hash,
)
from core.policy import Policy, load_policy_file
from core.settings import DEFAULT_POLICY_FILE
from tests.support import dev_authority

from .conftest import plan_of

POLICY = load_policy_file(DEFAULT_POLICY_FILE)
SHAPE = {**target_shape(demo_metadata), "secrets": rules.TableShape(columns=frozenset({"id", "token"}))}
ACME = Filter(column="customer_id", op="eq", value=1)


def _set(**values: Any) -> list[Assignment]:
    return [Assignment(column=name, value=value) for name, value in values.items()]


def _rules(findings: list[Finding]) -> dict[str, Risk]:
    return {finding.rule: finding.risk for finding in findings}


def _check(operation: Any, policy: Policy = POLICY) -> dict[str, Risk]:
    return _rules(rules.operation_findings(0, operation, policy, SHAPE))


# ---------------------------------------------------------------- rules, one by one


def test_unknown_table_is_blocked() -> None:
    assert _check(SelectOperation(table="accounts")) == {rules.RULE_TABLE_EXISTS: Risk.BLOCKED}


def test_table_missing_from_policy_is_blocked() -> None:
    assert _check(SelectOperation(table="secrets")) == {rules.RULE_TABLE_LISTED: Risk.BLOCKED}


def test_ledger_table_is_blocked_for_any_operation() -> None:
    shape = {**SHAPE, LEDGER_TABLE: rules.TableShape(columns=frozenset({"workflow_id", "plan_hash"}))}
    policy = POLICY.model_copy(deep=True)
    policy.tables[LEDGER_TABLE] = policy.tables["feature_flags"]  # even a policy that lists it
    for operation in (
        SelectOperation(table=LEDGER_TABLE),
        DeleteOperation(table=LEDGER_TABLE, filters=[Filter(column="plan_hash", op="not_null")]),
    ):
        findings = rules.operation_findings(0, operation, policy, shape)
        assert _rules(findings) == {rules.RULE_LEDGER: Risk.BLOCKED}


def test_unknown_column_is_blocked_wherever_it_appears() -> None:
    for operation in (
        SelectOperation(table="customers", columns=["id", "tier"]),
        UpdateOperation(table="customers", values=_set(tier="gold"), filters=[Filter(column="id", op="eq", value=1)]),
        UpdateOperation(table="customers", values=_set(status="x"), filters=[Filter(column="tier", op="eq", value=1)]),
    ):
        findings = _check(operation)
        assert findings == {rules.RULE_COLUMN_EXISTS: Risk.BLOCKED}, operation


def test_operation_kind_not_allowed_is_blocked() -> None:
    assert (
        _check(DeleteOperation(table="customers", filters=[Filter(column="id", op="eq", value=1)]))[
            rules.RULE_OPERATION_KIND
        ]
        is Risk.BLOCKED
    )
    assert (
        _check(
            UpdateOperation(table="plans", values=_set(price_cents=0), filters=[Filter(column="id", op="eq", value=1)])
        )[rules.RULE_OPERATION_KIND]
        is Risk.BLOCKED
    )
    assert rules.RULE_OPERATION_KIND not in _check(SelectOperation(table="plans"))


@pytest.mark.parametrize(
    "operation",
    [
        UpdateOperation(table="subscriptions", values=_set(plan_id=3)),
        DeleteOperation(table="feature_flags"),
    ],
)
def test_update_or_delete_without_filter_is_blocked(operation: Any) -> None:
    assert _check(operation)[rules.RULE_FILTER_REQUIRED] is Risk.BLOCKED


def test_protected_columns_are_never_written() -> None:
    update = UpdateOperation(table="users", values=_set(customer_id=2), filters=[Filter(column="id", op="eq", value=1)])
    assert _check(update)[rules.RULE_PROTECTED_COLUMN] is Risk.BLOCKED
    insert = InsertOperation(table="feature_flags", values=_set(id=999, customer_id=1, name="x", enabled=True))
    assert _check(insert)[rules.RULE_PROTECTED_COLUMN] is Risk.BLOCKED


def test_sensitive_column_writes_are_high() -> None:
    update = UpdateOperation(table="users", values=_set(role="admin"), filters=[Filter(column="id", op="eq", value=1)])
    assert _check(update) == {rules.RULE_SENSITIVE_COLUMN: Risk.HIGH}


def test_insert_missing_required_column_is_blocked() -> None:
    insert = InsertOperation(table="users", values=_set(customer_id=1, email="x@y.example", name="X"))
    findings = rules.operation_findings(0, insert, POLICY, SHAPE)
    blocked = [f for f in findings if f.rule == rules.RULE_REQUIRED_COLUMN]
    assert blocked and "role" in blocked[0].message
    assert "created_at" not in blocked[0].message  # the database fills it in
    assert "id" not in blocked[0].message  # generated by the database


def test_insert_may_set_protected_columns_but_never_the_key() -> None:
    """customer_id is protected (a user never moves account) yet a new user must name its account."""
    new_user = InsertOperation(table="users", values=_set(customer_id=1, email="x@y.example", name="X", role="member"))
    assert rules.RULE_PROTECTED_COLUMN not in _rules(rules.operation_findings(0, new_user, POLICY, SHAPE))
    with_key = InsertOperation(
        table="users", values=_set(id=999, customer_id=1, email="x@y.example", name="X", role="member")
    )
    assert _rules(rules.operation_findings(0, with_key, POLICY, SHAPE))[rules.RULE_PROTECTED_COLUMN] is Risk.BLOCKED
    move = UpdateOperation(table="users", values=_set(customer_id=2), filters=[ACME])
    assert _rules(rules.operation_findings(0, move, POLICY, SHAPE))[rules.RULE_PROTECTED_COLUMN] is Risk.BLOCKED


def test_deletes_are_at_least_high_and_selects_low() -> None:
    delete = DeleteOperation(table="feature_flags", filters=[ACME])
    assert _check(delete) == {rules.RULE_DELETE: Risk.HIGH}
    assert _check(SelectOperation(table="customers", columns=["id", "slug"])) == {rules.RULE_READ_ONLY: Risk.LOW}


def test_plan_longer_than_the_limit_is_blocked() -> None:
    plan = Plan(summary="many reads", operations=[SelectOperation(table="plans")] * 11)
    assert _rules(rules.check_plan_size(plan, POLICY)) == {rules.RULE_PLAN_SIZE: Risk.BLOCKED}
    plan.operations = plan.operations[:10]
    assert rules.check_plan_size(plan, POLICY) == []


def test_empty_plan_is_low_and_says_it_does_nothing() -> None:
    findings = rules.check_plan_size(Plan(summary="nothing"), POLICY)
    assert _rules(findings) == {rules.RULE_EMPTY_PLAN: Risk.LOW}
    assert "nothing" in findings[0].message


@pytest.mark.parametrize(
    ("table", "rows", "risk"),
    [
        ("customers", 1, Risk.LOW),  # auto_approve_rows: 1
        ("customers", 2, Risk.MEDIUM),
        ("customers", 25, Risk.MEDIUM),
        ("customers", 26, Risk.HIGH),  # limits.high_risk_rows: 25
        ("customers", 50, Risk.HIGH),
        ("customers", 51, Risk.BLOCKED),  # max_rows: 50
        ("invoices", 1, Risk.MEDIUM),  # auto_approve_rows: 0
        ("feature_flags", 150, Risk.HIGH),
        ("feature_flags", 201, Risk.BLOCKED),
    ],
)
def test_row_count_thresholds(table: str, rows: int, risk: Risk) -> None:
    findings = plan_limits.check_table_rows(table, rows, POLICY)
    assert rules.overall_risk(findings) is risk


def test_overall_risk_is_the_highest_finding() -> None:
    assert rules.overall_risk([]) is Risk.LOW
    findings = [
        Finding(rule="a", risk=Risk.MEDIUM, message=""),
        Finding(rule="b", risk=Risk.HIGH, message=""),
        Finding(rule="c", risk=Risk.LOW, message=""),
    ]
    assert rules.overall_risk(findings) is Risk.HIGH


# ---------------------------------------------------------------- validate_plan against the databases


async def _validate(dbs: Databases, *operations: Any) -> SafetyReport:
    plan = Plan(summary="test", operations=list(operations))
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    report: SafetyReport = await ActivityEnvironment().run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan)
    )
    assert report.plan_hash == plan_hash(plan)
    return report


async def test_plan_upgrade_is_low_with_preview(dbs: Databases) -> None:
    report = await _validate(dbs, UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=[ACME]))
    assert report.risk is Risk.LOW and report.required_approvals == 0
    [impact] = report.impacts
    assert impact.rows_affected == 1
    assert [(change.before, change.after) for change in impact.preview] == [
        ({"id": 1, "customer_id": 1, "plan_id": 2}, {"id": 1, "customer_id": 1, "plan_id": 3})
    ]
    assert await plan_of(dbs, 1) == 2  # counting changed nothing


async def test_role_rewrite_for_everyone_is_blocked(dbs: Databases) -> None:
    no_filter = await _validate(dbs, UpdateOperation(table="users", values=_set(role="admin")))
    assert no_filter.risk is Risk.BLOCKED and no_filter.required_approvals == 0
    trivial_filter = await _validate(
        dbs, UpdateOperation(table="users", values=_set(role="admin"), filters=[Filter(column="id", op="ge", value=0)])
    )
    assert trivial_filter.risk is Risk.BLOCKED
    assert {f.rule for f in trivial_filter.findings} >= {rules.RULE_MAX_ROWS, rules.RULE_SENSITIVE_COLUMN}
    assert trivial_filter.impacts[0].rows_affected > 50


async def test_role_rewrite_of_one_user_needs_two_approvers(dbs: Databases) -> None:
    report = await _validate(
        dbs,
        UpdateOperation(
            table="users",
            values=_set(role="admin"),
            filters=[Filter(column="email", op="eq", value="carol@acme-corp.example")],
        ),
    )
    assert report.risk is Risk.HIGH and report.required_approvals == 2
    assert report.impacts[0].rows_affected == 1
    [change] = report.impacts[0].preview
    assert change.before is not None and change.before["role"] in ("member", "viewer")
    assert change.after == {"id": 2, "email": MASK, "role": "admin"}  # the filter's column, private


async def test_many_rows_of_one_tenant_need_one_approver(dbs: Databases) -> None:
    report = await _validate(dbs, UpdateOperation(table="feature_flags", values=_set(enabled=False), filters=[ACME]))
    assert report.risk is Risk.MEDIUM and report.required_approvals == 1
    assert report.rows_affected == 4
    assert len(report.impacts[0].preview) == 4


async def test_rows_of_many_tenants_need_two_approvers(dbs: Databases) -> None:
    report = await _validate(
        dbs,
        UpdateOperation(
            table="customers", values=_set(status="paused"), filters=[Filter(column="id", op="le", value=5)]
        ),
    )
    assert report.risk is Risk.HIGH and report.required_approvals == 2
    assert _rules(report.findings)[plan_limits.RULE_TENANTS] is Risk.HIGH
    assert report.impacts[0].row_keys == ["1", "2", "3", "4", "5"]


async def test_delete_is_high_with_before_rows(dbs: Databases) -> None:
    report = await _validate(dbs, DeleteOperation(table="feature_flags", filters=[ACME]))
    assert report.risk is Risk.HIGH
    [impact] = report.impacts
    assert impact.rows_affected == 4
    assert all(
        change.after is None and change.before and change.before["customer_id"] == 1 for change in impact.preview
    )


async def test_insert_counts_one_row_and_previews_after(dbs: Databases) -> None:
    report = await _validate(
        dbs, InsertOperation(table="feature_flags", values=_set(customer_id=1, name="dark_mode", enabled=True))
    )
    assert report.risk is Risk.LOW
    assert report.impacts[0].rows_affected == 1
    assert report.impacts[0].preview[0].after == {"customer_id": 1, "name": "dark_mode", "enabled": True}


async def test_value_that_cannot_be_coerced_is_blocked(dbs: Databases) -> None:
    report = await _validate(dbs, UpdateOperation(table="subscriptions", values=_set(plan_id="pro"), filters=[ACME]))
    assert report.risk is Risk.BLOCKED
    assert _rules(report.findings)[rules.RULE_INVALID_VALUE] is Risk.BLOCKED


async def test_ledger_and_unlisted_tables_are_blocked(dbs: Databases) -> None:
    ledger = await _validate(dbs, SelectOperation(table=LEDGER_TABLE))
    assert _rules(ledger.findings) == {rules.RULE_LEDGER: Risk.BLOCKED}
    app_table = await _validate(dbs, SelectOperation(table="tickets"))  # present in the shared PostgreSQL DB
    assert app_table.risk is Risk.BLOCKED and app_table.impacts == []


async def test_findings_name_their_operation(dbs: Databases) -> None:
    report = await _validate(
        dbs,
        SelectOperation(table="plans"),
        UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=[ACME]),
        DeleteOperation(table="customers", filters=[Filter(column="id", op="eq", value=1)]),
    )
    assert report.risk is Risk.BLOCKED
    blocked = [f for f in report.findings if f.risk is Risk.BLOCKED]
    assert [(f.rule, f.operation_index) for f in blocked] == [(rules.RULE_OPERATION_KIND, 2)]
    assert [impact.operation_index for impact in report.impacts] == [0, 1, 2]


async def test_empty_plan_is_low(dbs: Databases) -> None:
    report = await _validate(dbs)
    assert report.risk is Risk.LOW and report.impacts == []
    assert report.findings[0].rule == rules.RULE_EMPTY_PLAN


async def test_policy_comes_from_the_constraint_table(dbs: Databases) -> None:
    """Tightening the stored policy changes the verdict without touching the YAML file."""
    from core.policy import read_policy, store_policy

    policy = await read_policy(dbs.app_sessions)
    policy.tables["subscriptions"].operations = ["select"]
    await store_policy(dbs.app_sessions, policy)
    report = await _validate(dbs, UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=[ACME]))
    assert _rules(report.findings)[rules.RULE_OPERATION_KIND] is Risk.BLOCKED


async def test_counting_transaction_is_read_only_on_postgresql(pg_databases: Databases) -> None:
    async with pg_databases.target_engine.connect() as connection:
        await connection.begin()
        await set_read_only(connection)
        with pytest.raises(sa_exc.DBAPIError, match="read-only"):
            await connection.execute(text("UPDATE customers SET status = 'x'"))
        await connection.rollback()
