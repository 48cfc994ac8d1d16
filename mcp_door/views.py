"""What the tools return: a ticket as an agent needs to see it, built from the workflow's `status`.

Never row values: the before → after preview stays with the people who approve. Until people
approve the plan, not even the dry run's row counts or the findings' texts: a plan filtered on
a private column (`email >= 'g'`) would otherwise tell the agent that value one comparison at a
time. Before approval an agent sees the risk, the approvals needed and the names of the rules
judged from the plan itself (`PLAN_RULES`); once people approved it, the counts and the outcome.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from activities.safety_rules import PLAN_RULES
from core.masking import people_approved
from core.models import OutcomeStatus, Plan, Risk, SafetyReport, Stage, TicketOutcome, TicketStatus
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
    status: str = Field(description="done, rejected, blocked, expired, failed or cancelled")
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
    withheld: bool = Field(
        default=True,
        description="true until people approve the plan: the dry run's row counts and the findings' texts stay "
        "with the approvers, so a plan cannot probe data it has not been allowed to read",
    )
    rules: list[str] = Field(default_factory=list, description="the policy rules that judged the plan")
    findings: list[str] = Field(default_factory=list, description="the policy's verdicts, once people approved")
    rows_affected: list[OperationRows] = Field(
        default_factory=list, description="rows each operation touched in the dry run, once people approved"
    )
    approvals_required: int = 0
    approvals: list[ApprovalView] = Field(default_factory=list)
    outcome: OutcomeView | None = None
    dashboard_url: str

    @classmethod
    def of(cls, status: TicketStatus, public_url: str) -> TicketView:
        report = status.report
        shown = people_approved(status)
        findings = report.findings if report else []
        return cls(
            ticket_id=ticket_label(status.ticket_id),
            status=status.status_label,
            stage=status.stage.value,
            finished=status.outcome is not None,
            requester=status.request.requester,
            plan=status.plan,
            risk=report.risk.value if report else None,
            withheld=not shown,
            rules=list(dict.fromkeys(f.rule for f in findings if shown or f.rule in PLAN_RULES)),
            findings=[finding.message for finding in findings] if shown else [],
            rows_affected=[
                OperationRows.of(impact.operation_index, impact.kind, impact.table, impact.rows_affected)
                for impact in (report.impacts if report and shown else [])
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
            outcome=_outcome(status, shown),
            dashboard_url=f"{public_url.rstrip('/')}/tickets/{status.ticket_id}",
        )


def _outcome(status: TicketStatus, shown: bool) -> OutcomeView | None:
    outcome = status.outcome
    if outcome is None:
        return None
    execution = outcome.execution if shown else None
    return OutcomeView(
        status=outcome.status.value,
        reason=outcome.reason if shown else _withheld_reason(outcome, status.report),
        rows_changed=execution.rows_changed if execution else 0,
        operations=[
            OperationRows.of(result.operation_index, result.kind, result.table, result.rows_affected)
            for result in (execution.results if execution else [])
        ],
        decided_by=list(outcome.decided_by),
        finished_at=outcome.finished_at,
    )


def _withheld_reason(outcome: TicketOutcome, report: SafetyReport | None) -> str:
    """The outcome's reason without what the dry run or the run counted, for a plan no person approved.

    A blocked plan's reason quotes its findings ("changes 2 rows of 2 tenants (1, 10)"), and a plan
    that ran without approval reports its rows; a rejection or an expiry says nothing of the rows.
    """
    if outcome.status is OutcomeStatus.DONE:
        return "executed without needing approval; row counts are shown only for plans people approved"
    if outcome.status is OutcomeStatus.BLOCKED:
        findings = report.findings if report else []
        rules = [f.rule for f in findings if f.risk is Risk.BLOCKED and f.rule in PLAN_RULES]
        why = f" (rules: {', '.join(dict.fromkeys(rules))})" if rules else ""
        return f"blocked by safety policy{why}; people see the details on the dashboard"
    if outcome.status is OutcomeStatus.FAILED and report is not None and report.required_approvals == 0:
        return outcome.reason.partition(":")[0]  # it ran without approval: the details may count rows
    return outcome.reason


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
