"""What the tools return: a ticket as an agent needs to see it, built from the workflow's `status`.

Counts and verdicts, not row values: the before → after preview stays with the people who
approve, and the agent learns how many rows each operation touched and how the ticket ended.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core.models import Plan, Stage, TicketStatus
from core.names import ticket_label
from core.schema import TicketRow

# Stages in the order a ticket passes them: progress notifications count along this list.
STAGE_ORDER = [
    Stage.RECEIVED,
    Stage.GATHERING_CONTEXT,
    Stage.PLANNING,
    Stage.VALIDATING,
    Stage.AWAITING_APPROVAL,
    Stage.EXECUTING,
    Stage.FINISHED,
]


class ApprovalView(BaseModel):
    decider: str
    approve: bool
    source: str
    counted: bool
    reason: str = ""


class OperationRows(BaseModel):
    operation: int = Field(description="1-based position in the plan")
    kind: str
    table: str
    rows: int

    @classmethod
    def of(cls, index: int, kind: str, table: str, rows: int) -> OperationRows:
        return cls(operation=index + 1, kind=kind, table=table, rows=rows)


class OutcomeView(BaseModel):
    status: str = Field(description="done, rejected, blocked, expired or failed")
    reason: str
    rows_changed: int = 0
    operations: list[OperationRows] = Field(default_factory=list)
    decided_by: list[str] = Field(default_factory=list)
    finished_at: datetime


class TicketView(BaseModel):
    """A ticket's state: stage, plan, risk, approvals so far and, once finished, its outcome."""

    ticket_id: str
    status: str = Field(description="the stage while running, the outcome once finished")
    stage: str
    finished: bool
    requester: str
    plan: Plan | None = None
    risk: str | None = None
    findings: list[str] = Field(default_factory=list)
    rows_affected: list[OperationRows] = Field(default_factory=list, description="from the dry run")
    approvals_required: int = 0
    approvals: list[ApprovalView] = Field(default_factory=list)
    outcome: OutcomeView | None = None
    dashboard_url: str

    @classmethod
    def of(cls, status: TicketStatus, public_url: str) -> TicketView:
        report, outcome = status.report, status.outcome
        return cls(
            ticket_id=ticket_label(status.ticket_id),
            status=status.status_label,
            stage=status.stage.value,
            finished=outcome is not None,
            requester=status.request.requester,
            plan=status.plan,
            risk=report.risk.value if report else None,
            findings=[finding.message for finding in report.findings] if report else [],
            rows_affected=[
                OperationRows.of(impact.operation_index, impact.kind, impact.table, impact.rows_affected)
                for impact in (report.impacts if report else [])
            ],
            approvals_required=report.required_approvals if report else 0,
            approvals=[
                ApprovalView(
                    decider=record.decision.decider,
                    approve=record.decision.approve,
                    source=record.decision.source.value,
                    counted=record.accepted,
                    reason=record.reason,
                )
                for record in status.decisions
            ],
            outcome=_outcome(status),
            dashboard_url=f"{public_url.rstrip('/')}/tickets/{status.ticket_id}",
        )


def _outcome(status: TicketStatus) -> OutcomeView | None:
    outcome = status.outcome
    if outcome is None:
        return None
    execution = outcome.execution
    return OutcomeView(
        status=outcome.status.value,
        reason=outcome.reason,
        rows_changed=execution.rows_changed if execution else 0,
        operations=[
            OperationRows.of(result.operation_index, result.kind, result.table, result.rows_affected)
            for result in (execution.results if execution else [])
        ],
        decided_by=list(outcome.decided_by),
        finished_at=outcome.finished_at,
    )


class FiledTicket(BaseModel):
    """What filing a ticket returns: its id, where it stands, and whether this call started it."""

    ticket_id: str
    stage: str
    already_existed: bool = Field(description="true when the same idempotency key had filed it before")
    dashboard_url: str


class TicketSummary(BaseModel):
    ticket_id: str
    text: str
    status: str
    risk: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: TicketRow) -> TicketSummary:
        label = ticket_label(row.ticket_id)
        return cls(ticket_id=label, text=row.text, status=row.status, risk=row.risk, created_at=row.created_at)


class TicketList(BaseModel):
    tickets: list[TicketSummary]
