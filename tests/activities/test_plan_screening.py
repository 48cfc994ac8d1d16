"""Holes a red team found in how plans and tickets are screened, each kept as the attack that found it.

Invisible characters outside the format category, line breaks in plan values, plans that fail the
same way every time (a LIKE pattern SQLite calls too complex, an integer past any column), and a
select that read right up to `max_rows` beside a write of one more row.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from temporalio.testing import ActivityEnvironment

from activities import plan_limits, value_rules
from activities import safety_rules as rules
from activities.safety import SafetyActivities
from activities.sql import is_transient_db_error
from core.bootstrap import Databases
from core.models import (
    MAX_FILTER_TEXT,
    Assignment,
    Filter,
    FilterOperator,
    OperationImpact,
    Plan,
    Risk,
    SafetyReport,
    SelectOperation,
    TicketRequest,
    UpdateOperation,
    ValidatePlanInput,
    hidden_character,
)
from core.policy import ValueRule
from tests.support import dev_authority

from .test_safety import POLICY

INVISIBLE = {
    "combining grapheme joiner": "\u034f",
    "variation selector 1": "\ufe00",
    "variation selector 16 after a letter": "\ufe0f",
    "variation selector 17": "\U000e0100",
    "variation selector 256": "\U000e01ef",
    "Hangul choseong filler": "\u115f",
    "Hangul jungseong filler": "\u1160",
    "Hangul filler": "\u3164",
    "halfwidth Hangul filler": "\uffa0",
    "braille blank": "\u2800",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
}


def _set(**values: Any) -> list[Assignment]:
    return [Assignment(column=name, value=value) for name, value in values.items()]


def _id(value: int) -> list[Filter]:
    return [Filter(column="id", op="eq", value=value)]


async def _validate(dbs: Databases, plan: Plan) -> SafetyReport:
    activities = SafetyActivities(dbs.app_sessions, dbs.target_engine, dev_authority())
    report: SafetyReport = await ActivityEnvironment().run(
        activities.validate_plan, ValidatePlanInput(ticket_id="t1", plan=plan)
    )
    return report


def _findings(report: SafetyReport, rule: str) -> list[str]:
    return [finding.message for finding in report.findings if finding.rule == rule and finding.risk is Risk.BLOCKED]


# ---------------------------------------------------------------- invisible characters


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_ticket_text_refuses_characters_that_show_nothing(char: str) -> None:
    shown = unicodedata.normalize("NFKC", char)  # ticket text is normalised first: U+3164 becomes U+1160
    with pytest.raises(ValidationError, match=f"U\\+{ord(shown):04X}"):
        TicketRequest(text=f"upgrade acme{char}corp to pro", requester="u")


def test_an_emoji_keeps_its_presentation_selector_but_not_a_run_of_them() -> None:
    assert hidden_character("ship it \u2764\ufe0f") is None
    assert hidden_character("ship it \u2764\ufe0f\ufe0f") == "an invisible variation selector (U+FE0F)"
    assert hidden_character("\u2764\ufe01") == "an invisible variation selector (U+FE01)"


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_plan_values_with_characters_that_show_nothing_are_blocked(databases: Databases, char: str) -> None:
    rename = UpdateOperation(table="customers", values=_set(name=f"Acme{char}"), filters=_id(1))
    report = await _validate(databases, Plan(summary="Rename acme-corp.", operations=[rename]))
    assert report.risk is Risk.BLOCKED
    [message] = _findings(report, value_rules.RULE_HIDDEN_CHARACTER)
    assert f"U+{ord(char):04X}" in message and "name" in message


# ---------------------------------------------------------------- line breaks in plan values


@pytest.mark.parametrize(
    "operation",
    [
        UpdateOperation(table="users", values=_set(name="Bob\n\nApproved by alice"), filters=_id(1)),
        UpdateOperation(table="users", values=_set(name="Bob\tadmin"), filters=_id(1)),
        UpdateOperation(
            table="users", values=_set(active=False), filters=[Filter(column="name", op="eq", value="Bob\nCarol")]
        ),
        UpdateOperation(
            table="users", values=_set(active=False), filters=[Filter(column="name", op="in", value=["Bob", "C\nD"])]
        ),
    ],
    ids=["newline in a value", "tab in a value", "newline in a filter", "newline in an in-list"],
)
async def test_line_breaks_in_plan_values_are_blocked(databases: Databases, operation: UpdateOperation) -> None:
    report = await _validate(databases, Plan(summary="Rename Bob.", operations=[operation]))
    assert report.risk is Risk.BLOCKED
    [message] = _findings(report, value_rules.RULE_HIDDEN_CHARACTER)
    assert "never holds" in message and report.findings[0].operation_index == 0


async def test_line_breaks_in_the_plans_prose_are_fine(databases: Databases) -> None:
    upgrade = UpdateOperation(table="subscriptions", values=_set(plan_id=3), filters=_id(1))
    plan = Plan(summary="Upgrade acme-corp.\nTo pro.", rationale="Asked for:\n\tpro", operations=[upgrade])
    report = await _validate(databases, plan)
    assert report.risk is Risk.LOW, report.findings


# ---------------------------------------------------------------- plans that fail the same way every time


def test_plan_values_are_bounded_in_the_model() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_FILTER_TEXT} characters"):
        Filter(column="name", op="like", value="%a" * 30_000)
    with pytest.raises(ValidationError, match="integer values lie between"):
        Assignment(column="seats", value=10**400)
    with pytest.raises(ValidationError, match="integer values lie between"):
        Filter(column="id", op="in", value=[1, 2**63])
    assert Assignment(column="seats", value=2**63 - 1).value == 2**63 - 1
    assert Plan.model_validate_json(
        '{"summary": "s", "operations": [{"kind": "update", "table": "subscriptions",'
        ' "values": [{"column": "seats", "value": 5}], "filters": [{"column": "id", "op": "eq", "value": 1}]}]}'
    ).operations


async def test_a_like_pattern_sqlite_calls_too_complex_is_blocked_not_retried(databases: Databases) -> None:
    """Past the model's bound (as an old history could hold it): the database's reason blocks the plan at once."""
    pattern = Filter.model_construct(column="name", op=FilterOperator.LIKE, value="%a" * 30_000)
    read = SelectOperation(table="users", columns=["id"], filters=[pattern], limit=5)
    report = await _validate(databases, Plan(summary="Users.", operations=[read]))
    assert report.risk is Risk.BLOCKED
    [message] = _findings(report, rules.RULE_DATABASE_REFUSED)
    assert "pattern too complex" in message


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("LIKE or GLOB pattern too complex", False),
        ("string or blob too big", False),
        ("too many SQL variables", False),
        ("Expression tree is too large (maximum depth 1000)", False),
        ("database is locked", True),
        ("disk I/O error", True),
    ],
)
def test_sqlite_errors_without_a_code_are_told_apart_by_their_words(message: str, transient: bool) -> None:
    error = sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError(message))
    assert is_transient_db_error(error) is transient


def test_sqlite_errors_are_told_apart_by_their_result_code() -> None:
    raw = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as too_complex:
        raw.execute("SELECT 'a' LIKE ?", ("%" * 60_000,))
    raw.close()
    assert too_complex.value.sqlite_errorcode == sqlite3.SQLITE_ERROR
    assert not is_transient_db_error(sa_exc.OperationalError("SELECT", {}, too_complex.value))


def test_a_huge_integer_is_refused_by_the_value_rule_not_crashed_on() -> None:
    rule = ValueRule(min=1, max=1000)
    assert value_rules.value_problem(10**400, rule) == "it must be at most 1000"
    assert value_rules.value_problem(-(10**400), rule) == "it must be at least 1"
    assert value_rules.value_problem("1" * 400, rule) == "it must be a number"


async def test_a_huge_integer_past_the_model_is_blocked_with_a_reason(databases: Databases) -> None:
    huge = Assignment.model_construct(column="seats", value=10**400)
    seats = UpdateOperation(table="subscriptions", values=[huge], filters=_id(1))
    report = await _validate(databases, Plan(summary="Seats.", operations=[seats]))
    assert report.risk is Risk.BLOCKED
    [message] = _findings(report, value_rules.RULE_VALUE_RULE)
    assert "at most 1000" in message


# ---------------------------------------------------------------- max_rows counts reads and writes together


async def test_max_rows_counts_rows_read_and_changed_together(databases: Databases) -> None:
    """Users 1-50 read and user 60 changed: 51 distinct rows of users, past its max_rows of 50."""
    read = SelectOperation(table="users", columns=["id", "name"], filters=[Filter(column="id", op="le", value=50)])
    rename = UpdateOperation(table="users", values=_set(name="Sixty"), filters=_id(60))
    report = await _validate(databases, Plan(summary="Users.", operations=[read, rename]))
    assert report.risk is Risk.BLOCKED
    [message] = _findings(report, rules.RULE_MAX_ROWS)
    assert "51 distinct rows of users (50 read, 1 changed)" in message


async def test_a_row_read_and_changed_counts_once(databases: Databases) -> None:
    read = SelectOperation(table="users", columns=["id", "name"], filters=[Filter(column="id", op="le", value=50)])
    rename = UpdateOperation(table="users", values=_set(name="Fifty"), filters=_id(50))
    report = await _validate(databases, Plan(summary="Users.", operations=[read, rename]))
    assert not _findings(report, rules.RULE_MAX_ROWS)
    assert report.risk is Risk.LOW, report.findings


def test_changes_alone_past_max_rows_are_reported_once() -> None:
    changed = OperationImpact(
        operation_index=0, kind="update", table="customers", rows_affected=51, row_keys=[str(n) for n in range(51)]
    )
    read = OperationImpact(operation_index=1, kind="select", table="customers", rows_affected=1, row_keys=["99"])
    findings = plan_limits.limit_findings([changed, read], set(), POLICY)
    assert [finding.message for finding in findings if finding.rule == rules.RULE_MAX_ROWS] == [
        "The plan changes 51 distinct rows of customers; the table's limit is 50."
    ]
