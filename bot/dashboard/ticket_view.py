"""The ticket page's data: a snapshot of the ticket, seen by one signed-in user.

Whether the user is offered the Approve and Reject buttons is decided by `refusal_preview`,
the same rule `TicketService.decide` (and Slack) apply, so the page never offers a decision
that would be refused, and says why not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.dashboard import presenters
from bot.dashboard.auth import DashboardUser
from bot.dashboard.reader import TicketSnapshot
from bot.dashboard.revert_view import RevertView, revert_view
from core.approval import in_words, refusal_preview
from core.models import DecisionSource, Stage, TicketStatus
from core.names import workflow_id_for
from core.schema import AuditEventRow


def approvers_of(status: TicketStatus) -> list[str]:
    """Who may decide: the pending request's resolved approvers, else the ticket's configured list."""
    if status.approval is not None:
        return list(status.approval.approvers)
    return list(status.request.approval.approvers)


def refusal_for(status: TicketStatus, user: DashboardUser) -> str | None:
    """Why `user` cannot decide on this ticket now, or None when they can."""
    if status.approval is None:
        return f"This ticket is {presenters.words(status.status_label)}; there is nothing to decide."
    refusal = refusal_preview(status, status.approval.decision(user.approver, DecisionSource.DASHBOARD))
    return None if refusal is None else in_words(refusal)


def status_version(status: TicketStatus | None) -> str:
    """Changes whenever the workflow's state changes: the live page compares it with its own."""
    material = status.model_dump_json() if status else ""
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass
class TicketPage:
    short_id: str
    workflow_id: str
    text: str
    requester: str
    source: str
    channel: str | None
    created_at: datetime | None
    updated_at: datetime | None
    status_label: str
    stage: str
    risk: str | None
    finished: bool
    version: str
    notice: str | None
    status: TicketStatus | None
    operations: list[presenters.OperationRow] = field(default_factory=list)
    findings: list[presenters.FindingRow] = field(default_factory=list)
    previews: list[presenters.Preview] = field(default_factory=list)
    decisions: list[presenters.DecisionRow] = field(default_factory=list)
    steps: list[presenters.StageStep] = field(default_factory=list)
    audit: list[AuditEventRow] = field(default_factory=list)
    can_decide: bool = False
    why_not: str | None = None
    approvals_so_far: int = 0
    undo: RevertView = field(default_factory=RevertView)

    @property
    def live(self) -> bool:
        """Whether the page should keep watching: only the workflow can move a ticket on."""
        return self.status is not None and not self.finished


def ticket_page(
    snapshot: TicketSnapshot,
    user: DashboardUser,
    *,
    revert_window: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> TicketPage:
    status, row = snapshot.status, snapshot.row
    version = status_version(status)
    undo = revert_view(status, snapshot.audit, window=revert_window, now=now or datetime.now(UTC))
    if status is None:
        assert row is not None, "a snapshot has the workflow's status or the app DB's row"
        return TicketPage(
            short_id=snapshot.short_id,
            workflow_id=row.workflow_id,
            text=row.text,
            requester=row.requester,
            source=row.source,
            channel=row.channel,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status_label=row.status,
            stage=row.stage,
            risk=row.risk,
            finished=row.stage == Stage.FINISHED.value,
            version=version,
            notice=snapshot.notice,
            status=None,
            audit=snapshot.audit,
            steps=presenters.stage_steps(_stage(row.stage)),
            why_not="The decision buttons need Temporal's current state.",
            undo=undo,
        )
    report = status.report
    why_not = refusal_for(status, user)
    return TicketPage(
        short_id=snapshot.short_id,
        workflow_id=status.workflow_id or workflow_id_for(snapshot.short_id),
        text=status.request.text,
        requester=status.request.requester,
        source=status.request.source.value,
        channel=status.request.channel,
        created_at=status.created_at,
        updated_at=status.updated_at,
        status_label=status.status_label,
        stage=status.stage.value,
        risk=report.risk.value if report else (row.risk if row else None),
        finished=status.outcome is not None,
        version=version,
        notice=snapshot.notice,
        status=status,
        operations=presenters.operation_rows(status.plan, report) if status.plan else [],
        findings=presenters.finding_rows(report) if report else [],
        previews=presenters.previews(report) if report else [],
        decisions=presenters.decision_rows(status.decisions),
        steps=presenters.stage_steps(status.stage),
        audit=snapshot.audit,
        can_decide=status.pending_approval and why_not is None,
        why_not=why_not,
        approvals_so_far=approvals_so_far(status),
        undo=undo,
    )


def approvals_so_far(status: TicketStatus) -> int:
    """Approvals counted towards the pending request (earlier review rounds do not count)."""
    return len(status.approved_by) if status.approval is not None else 0


def _stage(value: str) -> Stage | None:
    try:
        return Stage(value)
    except ValueError:
        return None
