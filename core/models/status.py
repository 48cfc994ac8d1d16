"""Where a ticket stands: the `status` query's answer, its execution result and its outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from core.models.base import Model, Scalar
from core.models.decisions import ApprovalRequest, DecisionRecord
from core.models.plan import Plan
from core.models.request import SlackMessageRef, TicketRequest
from core.models.safety import SafetyReport


class OperationResult(Model):
    operation_index: int
    kind: str
    table: str
    rows_affected: int
    rows: list[dict[str, Scalar]] = Field(default_factory=list)


class ExecutionResult(Model):
    plan_hash: str
    results: list[OperationResult] = Field(default_factory=list)
    replayed: bool = False
    executed_at: datetime

    @property
    def rows_changed(self) -> int:
        return sum(result.rows_affected for result in self.results if result.kind != "select")


class Stage(StrEnum):
    RECEIVED = "received"
    GATHERING_CONTEXT = "gathering_context"
    PLANNING = "planning"
    VALIDATING = "validating"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    FINISHED = "finished"


class OutcomeStatus(StrEnum):
    DONE = "done"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"  # through Temporal, by an operator: before its plan ran


class TicketOutcome(Model):
    status: OutcomeStatus
    reason: str
    execution: ExecutionResult | None = None
    decided_by: list[str] = Field(default_factory=list)
    finished_at: datetime


class TicketStatus(Model):
    """The `status` query's answer: all a UI needs, so no UI keeps its own copy."""

    ticket_id: str
    workflow_id: str
    request: TicketRequest
    stage: Stage
    created_at: datetime
    updated_at: datetime
    context_summary: str = ""
    plan: Plan | None = None
    plan_hash: str | None = None
    report: SafetyReport | None = None
    approval: ApprovalRequest | None = None
    decisions: list[DecisionRecord] = Field(default_factory=list)
    reminders_sent: int = 0
    outcome: TicketOutcome | None = None
    slack_message: SlackMessageRef | None = None
    feedback: list[str] = Field(default_factory=list)
    review_rounds: int = 0
    # Why the plan is being judged (and asked for) again: the rows it touches changed since approval.
    rejudged_because: str = ""
    # Who has approved the current approval request: the one count every client shows.
    approved_by: list[str] = Field(default_factory=list)
    # The Slack message is owed while the state it should show is newer than the one delivered.
    message_version: int = 0
    message_delivered: int = 0
    posts_owed: list[str] = Field(default_factory=list)

    @property
    def message_owed(self) -> bool:
        return self.message_delivered < self.message_version or bool(self.posts_owed)

    @property
    def approvals_needed(self) -> int:
        """How many more approvals the current request needs (0 when none is pending)."""
        if self.approval is None:
            return 0
        return max(0, self.approval.required_approvals - len(self.approved_by))

    @property
    def pending_approval(self) -> bool:
        return self.stage is Stage.AWAITING_APPROVAL and self.approval is not None

    @property
    def status_label(self) -> str:
        return self.outcome.status.value if self.outcome else self.stage.value
