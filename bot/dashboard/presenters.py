"""Plans, safety findings and row previews as plain rows for the templates.

Pure functions over the shared models, so templates hold no logic beyond loops. The words
(values, filters, what an operation does, decisions) come from `rendering.words`, as in
Slack and the CLI; Jinja escapes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.models import (
    DecisionRecord,
    OperationImpact,
    Plan,
    SafetyReport,
    Stage,
)
from rendering.words import cell_text, changes, conditions, decision_verb, verdict_text

PREVIEW_ROWS = 20

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
        impact = impacts.get(index)
        rows.append(
            OperationRow(
                number=index + 1,
                kind=operation.kind,
                table=operation.table,
                changes=changes(operation),
                conditions=conditions(operation),
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
                before=cell_text(change.before.get(column)) if change.before is not None else None,
                after=cell_text(change.after.get(column)) if change.after is not None else None,
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
    verdict: str
    comment: str


def decision_rows(records: list[DecisionRecord]) -> list[DecisionRow]:
    return [
        DecisionRow(
            decider=record.decision.decider,
            verb=decision_verb(record.decision),
            source=record.decision.source.value,
            received_at=record.received_at,
            accepted=record.accepted,
            verdict=verdict_text(record),
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
