"""Plans, safety findings and row previews as plain rows for the templates.

Pure functions over the shared models, so templates hold no logic beyond loops and the
formatting of what an operation does lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.models import (
    DecisionRecord,
    Filter,
    FilterOperator,
    InsertOperation,
    OperationImpact,
    Plan,
    SafetyReport,
    Scalar,
    SelectOperation,
    Stage,
    UpdateOperation,
)

PREVIEW_ROWS = 20

OPERATOR_SYMBOLS = {
    FilterOperator.EQ: "=",
    FilterOperator.NE: "≠",
    FilterOperator.LT: "<",
    FilterOperator.LE: "≤",
    FilterOperator.GT: ">",
    FilterOperator.GE: "≥",
    FilterOperator.IN: "in",
    FilterOperator.LIKE: "like",
    FilterOperator.IS_NULL: "is null",
    FilterOperator.NOT_NULL: "is not null",
}

# The stages a ticket walks through, in order, for the progress strip on the ticket page.
STAGE_STEPS = [
    (Stage.RECEIVED, "Received"),
    (Stage.GATHERING_CONTEXT, "Context"),
    (Stage.PLANNING, "Planning"),
    (Stage.VALIDATING, "Safety check"),
    (Stage.AWAITING_APPROVAL, "Approval"),
    (Stage.EXECUTING, "Executing"),
    (Stage.FINISHED, "Finished"),
]


def words(value: str | None) -> str:
    """`awaiting_approval` → `awaiting approval`."""
    return (value or "").replace("_", " ")


def scalar_text(value: Scalar | list[Scalar]) -> str:
    """A value as a person reads it in a table: NULL, true/false, numbers and text as they are."""
    if isinstance(value, list):
        return "(" + ", ".join(scalar_text(item) for item in value) + ")"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _literal(value: Scalar | list[Scalar]) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "(" + ", ".join(_literal(item) for item in value) + ")"
    return scalar_text(value)


def filter_text(item: Filter) -> str:
    symbol = OPERATOR_SYMBOLS[item.op]
    if item.op in (FilterOperator.IS_NULL, FilterOperator.NOT_NULL):
        return f"{item.column} {symbol}"
    return f"{item.column} {symbol} {_literal(item.value)}"


@dataclass(frozen=True)
class OperationRow:
    number: int
    kind: str
    table: str
    changes: list[str]
    conditions: list[str]
    rows_affected: int | None
    risk: str | None


def operation_rows(plan: Plan, report: SafetyReport | None) -> list[OperationRow]:
    """One row per operation: what it writes or reads, where, how many rows, its worst finding."""
    impacts = {impact.operation_index: impact for impact in report.impacts} if report else {}
    rows = []
    for index, operation in enumerate(plan.operations):
        changes: list[str] = []
        conditions: list[str] = []
        if isinstance(operation, InsertOperation | UpdateOperation):
            changes = [f"{item.column} = {_literal(item.value)}" for item in operation.values]
        if isinstance(operation, SelectOperation):
            rows_word = "row" if operation.limit == 1 else "rows"
            changes = [", ".join(operation.columns) or "all columns", f"at most {operation.limit} {rows_word}"]
        if not isinstance(operation, InsertOperation):
            conditions = [filter_text(item) for item in operation.filters]
        impact = impacts.get(index)
        rows.append(
            OperationRow(
                number=index + 1,
                kind=operation.kind,
                table=operation.table,
                changes=changes,
                conditions=conditions,
                rows_affected=impact.rows_affected if impact else None,
                risk=_worst_risk(report, index),
            )
        )
    return rows


def _worst_risk(report: SafetyReport | None, index: int) -> str | None:
    if report is None:
        return None
    risks = [finding.risk for finding in report.findings if finding.operation_index == index]
    return max(risks, key=lambda risk: risk.rank).value if risks else None


@dataclass(frozen=True)
class FindingRow:
    risk: str
    rule: str
    message: str
    where: str


def finding_rows(report: SafetyReport) -> list[FindingRow]:
    """Every finding, the most serious first (stable within one risk level)."""
    ordered = sorted(report.findings, key=lambda finding: -finding.risk.rank)
    return [
        FindingRow(
            risk=finding.risk.value,
            rule=finding.rule,
            message=finding.message,
            where=f"operation {finding.operation_index + 1}" if finding.operation_index is not None else "whole plan",
        )
        for finding in ordered
    ]


@dataclass(frozen=True)
class PreviewCell:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before is not None and self.after is not None and self.before != self.after


@dataclass(frozen=True)
class Preview:
    number: int
    kind: str
    table: str
    rows_affected: int
    columns: list[str]
    rows: list[list[PreviewCell]]

    @property
    def hidden_rows(self) -> int:
        return max(self.rows_affected - len(self.rows), 0)


def previews(report: SafetyReport) -> list[Preview]:
    """Before → after for each write; changed columns first, so the change is what one sees."""
    return [_preview(impact) for impact in report.impacts if impact.kind != "select"]


def _preview(impact: OperationImpact) -> Preview:
    changes = impact.preview[:PREVIEW_ROWS]
    changed: list[str] = []
    others: list[str] = []
    for change in changes:
        before, after = change.before or {}, change.after or {}
        for column in [*before, *after]:
            if column in changed or column in others:
                continue
            differs = change.before is not None and change.after is not None and before.get(column) != after.get(column)
            (changed if differs else others).append(column)
    others = [column for column in others if column not in changed]
    # The row's id first, so each line says which row it is; then what changes; then the rest.
    keys = [column for column in others if column == "id"]
    columns = keys + changed + [column for column in others if column != "id"]
    rows = [
        [
            PreviewCell(
                before=scalar_text(change.before.get(column)) if change.before is not None else None,
                after=scalar_text(change.after.get(column)) if change.after is not None else None,
            )
            for column in columns
        ]
        for change in changes
    ]
    return Preview(impact.operation_index + 1, impact.kind, impact.table, impact.rows_affected, columns, rows)


@dataclass(frozen=True)
class DecisionRow:
    decider: str
    verb: str
    source: str
    received_at: datetime
    accepted: bool
    reason: str
    comment: str


def decision_rows(records: list[DecisionRecord]) -> list[DecisionRow]:
    return [
        DecisionRow(
            decider=record.decision.decider,
            verb="approved" if record.decision.approve else "rejected",
            source=record.decision.source.value,
            received_at=record.received_at,
            accepted=record.accepted,
            reason=record.reason,
            comment=record.decision.comment,
        )
        for record in records
    ]


@dataclass(frozen=True)
class StageStep:
    label: str
    state: str  # done, current or todo


def stage_steps(stage: Stage | None) -> list[StageStep]:
    order = [step for step, _ in STAGE_STEPS]
    position = order.index(stage) if stage in order else -1
    steps = []
    for index, (_, label) in enumerate(STAGE_STEPS):
        if index < position or (stage is Stage.FINISHED and index == position):
            state = "done"
        elif index == position:
            state = "current"
        else:
            state = "todo"
        steps.append(StageStep(label, state))
    return steps
