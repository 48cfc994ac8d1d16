"""`rendering.words`: one spelling of values, filters, operations, plans and decisions, and every medium uses it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from rich.console import Console

from bot.dashboard.presenters import decision_rows, operation_rows, previews
from cli.render import status_view
from core.models import (
    Assignment,
    Decision,
    DecisionRecord,
    DecisionSource,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    OperationImpact,
    Plan,
    RowChange,
    SafetyReport,
    Scalar,
    SelectOperation,
    UpdateOperation,
)
from rendering import words
from rendering.slack import MRKDWN, ticket_message
from tests.slack.statuses import awaiting

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CODE = words.Marks(name=lambda text: f"[{text}]", value=lambda text: f"<{text}>", strong=str.upper)


@pytest.mark.parametrize(
    ("value", "inline", "cell"),
    [
        (None, "NULL", "NULL"),
        (True, "true", "true"),
        (False, "false", "false"),
        (0, "0", "0"),
        (42, "42", "42"),
        (2.5, "2.5", "2.5"),
        ("pro", "'pro'", "pro"),
        ("", "''", ""),
        (["a", 1, None, True], "('a', 1, NULL, true)", "('a', 1, NULL, true)"),
        # Red team 27: a quote in a value read as a second condition; a zero-width space passed for nothing.
        ("x' and name = 'sso", "'x\\' and name = \\'sso'", "x' and name = 'sso"),
        ("C:\\temp", "'C:\\\\temp'", "C:\\temp"),
        ("ad\u200bmin", "'ad\\u200bmin'", "ad\\u200bmin"),
        ("\u202eevil", "'\\u202eevil'", "\\u202eevil"),
        ("a\u00a0b c", "'a\\u00a0b c'", "a\\u00a0b c"),
    ],
)
def test_a_value_has_one_spelling(value: Scalar | list[Scalar], inline: str, cell: str) -> None:
    assert words.value_text(value) == inline
    assert words.cell_text(value) == cell


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (Filter(column="id", op="eq", value=2), "id = 2"),
        (Filter(column="name", op="ne", value="pro"), "name ≠ 'pro'"),
        (Filter(column="seats", op="lt", value=5), "seats < 5"),
        (Filter(column="seats", op="le", value=5), "seats ≤ 5"),
        (Filter(column="seats", op="gt", value=5), "seats > 5"),
        (Filter(column="seats", op="ge", value=5), "seats ≥ 5"),
        (Filter(column="id", op="in", value=[1, 2]), "id in (1, 2)"),
        (Filter(column="email", op="like", value="%@acme.example"), "email like '%@acme.example'"),
        (Filter(column="active", op="eq", value=True), "active = true"),
        (Filter(column="deleted_at", op="is_null"), "deleted_at is null"),
        (Filter(column="deleted_at", op="not_null"), "deleted_at is not null"),
    ],
)
def test_filters_in_words(item: Filter, expected: str) -> None:
    assert words.filter_text(item) == expected


def test_every_operator_has_words() -> None:
    assert set(words.OPERATOR_WORDS) == set(FilterOperator)


def test_marks_set_names_and_values_apart_and_leave_the_words() -> None:
    item = Filter(column="id", op="in", value=[1, "x"])
    assert words.filter_text(item, CODE) == "[id] in <(1, 'x')>"
    assert words.filter_text(Filter(column="a", op="lt", value=1), MRKDWN) == "`a` &lt; `1`"


SELECT = SelectOperation(table="plans", columns=["id", "name"], filters=[Filter(column="name", op="eq", value="pro")])
INSERT = InsertOperation(
    table="notes", values=[Assignment(column="body", value="hi"), Assignment(column="pinned", value=False)]
)
UPDATE = UpdateOperation(
    table="subscriptions",
    values=[Assignment(column="plan_id", value=3)],
    filters=[Filter(column="customer_id", op="eq", value=1), Filter(column="active", op="eq", value=True)],
)
DELETE_ALL = DeleteOperation(table="sessions")


def test_operations_in_one_sentence() -> None:
    assert words.operation_text(SELECT) == "read id, name from plans where name = 'pro' (at most 50 rows)"
    assert words.operation_text(INSERT) == "insert into notes: body = 'hi', pinned = false"
    assert (
        words.operation_text(UPDATE) == "update subscriptions: set plan_id = 3 where customer_id = 1 and active = true"
    )
    assert words.operation_text(DELETE_ALL) == "delete from sessions (every row)"
    assert words.operation_text(DELETE_ALL, CODE) == "DELETE from [sessions] (EVERY ROW)"
    assert words.operation_text(SelectOperation(table="t", limit=1)) == "read all columns from t (at most 1 row)"


def test_operations_in_parts_for_tables() -> None:
    assert words.changes(SELECT) == ["id, name", "at most 50 rows"]
    assert words.changes(INSERT) == ["body = 'hi'", "pinned = false"]
    assert words.changes(DELETE_ALL) == []
    assert words.conditions(UPDATE) == ["customer_id = 1", "active = true"]
    assert words.conditions(INSERT) == []
    assert [words.rows_text(op) for op in (SELECT, INSERT, DELETE_ALL)] == ["name = 'pro'", "new row", "every row"]
    assert [words.change_text(op) for op in (SELECT, INSERT, UPDATE, DELETE_ALL)] == [
        "read id, name (at most 50 rows)",
        "insert body = 'hi', pinned = false",
        "set plan_id = 3",
        "delete",
    ]


def test_a_plan_is_a_numbered_list_of_operations() -> None:
    plan = Plan(summary="s", operations=[UPDATE, DELETE_ALL])
    assert words.plan_lines(plan) == [
        "1. update subscriptions: set plan_id = 3 where customer_id = 1 and active = true",
        "2. delete from sessions (every row)",
    ]
    assert words.plan_lines(Plan(summary="nothing")) == []


def test_rows_before_and_after() -> None:
    assert words.row_text({"id": 2, "role": "viewer", "admin": False}) == "id = 2, role = 'viewer', admin = false"
    assert words.row_text({"id": 2, "role": None}, ["role"]) == "role = NULL"
    assert words.row_change_text(RowChange(after={"id": 7, "ok": True})) == "new row: id = 7, ok = true"
    assert words.row_change_text(RowChange(before={"id": 7})) == "removed: id = 7"
    changed = RowChange(before={"id": 2, "role": "viewer"}, after={"id": 2, "role": "admin"})
    assert words.row_change_text(changed) == "role: 'viewer' → 'admin'"
    assert words.row_change_text(RowChange(before={"id": 2}, after={"id": 2})) == "unchanged"


def decided(approve: bool, *, comment: str = "", replan: bool = False, accepted: bool = True) -> DecisionRecord:
    decision = Decision(
        approve=approve,
        decider="alice",
        source=DecisionSource.SLACK,
        request_id="r1",
        plan_hash="h",
        comment=comment,
        replan=replan,
    )
    return DecisionRecord(decision=decision, received_at=NOW, accepted=accepted, reason="" if accepted else "stale")


def test_decisions_in_words() -> None:
    assert words.decision_verb(decided(True).decision) == "approved"
    assert words.decision_verb(decided(False).decision) == "rejected"
    assert words.decision_verb(decided(False, replan=True).decision) == "rejected for a new plan"
    assert words.decision_text(decided(True, comment="fine").decision) == "approved by alice via slack: fine"
    assert words.verdict_text(decided(True)) == "counted"
    assert words.verdict_text(decided(True, accepted=False)) == "ignored: stale"
    records = [decided(True, comment="<!channel>"), decided(False, accepted=False)]
    assert words.decision_lines(records) == ["Approved by alice via slack: <!channel>"]
    assert words.decision_lines(records, MRKDWN) == ["Approved by alice via slack: &lt;!channel&gt;"]


def test_count() -> None:
    assert [words.count(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]


def test_slack_the_cli_and_the_dashboard_spell_a_plan_the_same_way() -> None:
    """The disagreement that started this module: `True` in the CLI, `true` in Slack and the dashboard."""
    status = awaiting()
    assert status.plan is not None
    status.plan = status.plan.model_copy(update={"operations": [UPDATE]})
    impact = OperationImpact(
        operation_index=0,
        kind="update",
        table="subscriptions",
        rows_affected=1,
        preview=[RowChange(before={"id": 1, "plan_id": 1, "paid": None}, after={"id": 1, "plan_id": 3, "paid": True})],
    )
    status.report = SafetyReport(risk=status.report.risk if status.report else "low", impacts=[impact])

    slack = json.dumps([block.to_dict() for block in ticket_message(status).blocks], ensure_ascii=False)
    console = Console(record=True, width=250, color_system=None)
    console.print(status_view(status))
    cli = console.export_text()
    [row] = operation_rows(status.plan, status.report)

    assert "`active` = `true`" in slack and "`paid`: `NULL` → `true`" in slack
    assert "active = true" in cli and "paid = NULL" in cli and "paid = true" in cli and "True" not in cli
    assert row.conditions == ["customer_id = 1", "active = true"] and row.changes == ["plan_id = 3"]
    paid = previews(status.report)[0].rows[0][-1]
    assert (paid.before, paid.after) == ("NULL", "true")
    [ignored] = decision_rows([decided(False, replan=True, accepted=False)])
    assert (ignored.verb, ignored.verdict) == ("rejected for a new plan", "ignored: stale")
