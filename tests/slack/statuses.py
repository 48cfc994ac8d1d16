"""`TicketStatus` values at each stage, built by hand for rendering and notifier tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.models import (
    ApprovalRequest,
    ApprovalSettings,
    DecisionRecord,
    DecisionSource,
    ExecutionResult,
    OperationResult,
    OutcomeStatus,
    Plan,
    Risk,
    SlackMessageRef,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketSource,
    TicketStatus,
)
from tests.support import scripted_report
from tests.workflows.fake_activities import UPGRADE_PLAN

REQUESTER = "UDAVE0001"
APPROVERS = ["UALICE001", "UBOB00001"]
CHANNEL = "C0TICKETS"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def received(
    ticket_id: str = "0123456789",
    *,
    text: str = "upgrade acme-corp to the pro plan",
    channel: str | None = CHANNEL,
    source: TicketSource = TicketSource.SLACK,
    requester: str = REQUESTER,
    escalation_channel: str | None = "C0ESCALATE",
) -> TicketStatus:
    return TicketStatus(
        ticket_id=ticket_id,
        workflow_id=f"ticket-{ticket_id}",
        request=TicketRequest(
            text=text,
            requester=requester,
            source=source,
            channel=channel,
            approval=ApprovalSettings(approvers=APPROVERS, escalation_channel=escalation_channel),
        ),
        stage=Stage.RECEIVED,
        created_at=NOW,
        updated_at=NOW,
    )


def planned(status: TicketStatus | None = None, plan: Plan | None = None, risk: Risk = Risk.HIGH) -> TicketStatus:
    status = (status or received()).model_copy(deep=True)
    status.plan = plan or UPGRADE_PLAN.model_copy(deep=True)
    status.report = scripted_report(status.plan, risk, 1)
    status.plan_hash = status.report.plan_hash
    status.stage = Stage.VALIDATING
    return status


def awaiting(status: TicketStatus | None = None) -> TicketStatus:
    status = planned(status) if status is None or status.plan is None else status.model_copy(deep=True)
    assert status.report is not None
    status.stage = Stage.AWAITING_APPROVAL
    status.approval = ApprovalRequest(
        request_id="req00001",
        plan_hash=status.report.plan_hash,
        approvers=APPROVERS,
        requested_at=NOW,
        deadline=NOW + timedelta(days=3),
        reminder_at=NOW + timedelta(days=2),
    )
    return status


def decision(status: TicketStatus, decider: str, approve: bool = True, comment: str = "") -> DecisionRecord:
    assert status.approval is not None
    return DecisionRecord(
        decision=status.approval.decision(decider, DecisionSource.SLACK, approve=approve, comment=comment),
        received_at=NOW,
        accepted=True,
    )


def finished(
    status: TicketStatus,
    outcome: OutcomeStatus,
    reason: str = "",
    *,
    decided_by: list[str] | None = None,
    rows: int = 1,
) -> TicketStatus:
    status = status.model_copy(deep=True)
    execution = None
    if outcome is OutcomeStatus.DONE:
        execution = ExecutionResult(
            plan_hash=status.plan_hash or "",
            results=[OperationResult(operation_index=0, kind="update", table="subscriptions", rows_affected=rows)],
            executed_at=NOW,
        )
        reason = reason or f"executed: {rows} row(s) changed"
    status.outcome = TicketOutcome(
        status=outcome, reason=reason, execution=execution, decided_by=decided_by or [], finished_at=NOW
    )
    status.approval = None
    status.stage = Stage.FINISHED
    return status


def with_message(status: TicketStatus, ref: SlackMessageRef) -> TicketStatus:
    status = status.model_copy(deep=True)
    status.slack_message = ref
    return status
