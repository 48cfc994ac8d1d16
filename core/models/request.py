"""What someone asked for: the ticket's request, validated at the edge before anything starts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from core.models.base import Model
from core.models.decisions import ApprovalRequest, Decision, DecisionRecord
from core.models.plan import Plan
from core.models.revert import RevertOf
from core.models.safety import SafetyReport
from core.models.text import MAX_TICKET_TEXT, clean_ticket_text, refuse_hidden_characters

MAX_REASON = 1000


class TicketSource(StrEnum):
    SLACK = "slack"
    DASHBOARD = "dashboard"
    CLI = "cli"
    API = "api"
    MCP = "mcp"


class ApprovalSettings(Model):
    """Who may approve and how long to wait: fixed when the ticket starts."""

    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    reminder_before_seconds: int = Field(default=24 * 3600, ge=0)
    escalation_channel: str | None = None


class SlackMessageRef(Model):
    channel: str
    ts: str


class UnjudgedDecision(Model):
    """A decision signal as it came (its payload is parsed when judged) and when."""

    payload: Any
    approve: bool
    received_at: datetime


class WaitingApproval(Model):
    """Where a ticket that continued as new while waiting for approval stood: the new run waits on."""

    plan: Plan
    report: SafetyReport
    approval: ApprovalRequest
    approvals: list[Decision] = Field(default_factory=list)  # counted so far, proofs and all, for the executor
    decisions: list[DecisionRecord] = Field(default_factory=list)
    reminders_sent: int = 0
    context_summary: str = ""
    rejudged_because: str = ""
    rows_changed: int = 0
    # Audit events the last run could not write (the app DB was down), written by this one, each once:
    # `RecordEventInput`s as JSON (core/models/audit.py builds on this module).
    unrecorded: list[dict[str, Any]] = Field(default_factory=list)
    # Decisions the last run received but had not judged when it continued (their checks still running):
    # judged by this one, proofs checked again.
    unjudged: list[UnjudgedDecision] = Field(default_factory=list)


class ContinuedTicket(Model):
    """What a ticket carries into a fresh run when its history grows long: a long review conversation,
    or a wait for approval that many signals made long."""

    created_at: datetime
    feedback: list[str] = Field(default_factory=list)
    rounds: int = 0
    slack_message: SlackMessageRef | None = None
    waiting: WaitingApproval | None = None


class TicketRequest(Model):
    """What someone asked for, validated at the edge before anything starts."""

    text: str = Field(min_length=1, max_length=MAX_TICKET_TEXT)
    requester: str = Field(min_length=1, max_length=200)
    source: TicketSource = TicketSource.CLI
    channel: str | None = Field(default=None, max_length=200)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    continued: ContinuedTicket | None = None  # set only by the workflow when it continues as new
    reason: str = Field(default="", max_length=MAX_REASON)  # why the requester asks, shown to approvers
    # An agent's own plan (the MCP door's `propose_plan`): the planning step returns it instead of asking the LLM.
    proposed_plan: Plan | None = None
    # Set only by `TicketService.revert`: this ticket undoes an executed one, from its before-images.
    reverts: RevertOf | None = None
    # Set by the front door that authenticated the requester, for this ticket's id (core/request_proof.py).
    signed_at: datetime | None = None
    proof: str = Field(default="", max_length=200)

    @field_validator("text")
    @classmethod
    def _clean_text(cls, value: str) -> str:
        return clean_ticket_text(value)

    @field_validator("reason")
    @classmethod
    def _clean_reason(cls, value: str) -> str:
        # Limited again once normalised: a reason that grew past its field was refused by every
        # worker that decoded it, and the request's checks fell back to the task queue (red team 20).
        return clean_ticket_text(value, MAX_REASON) if value.strip() else ""

    @field_validator("requester", "channel", "proof")
    @classmethod
    def _screen_names(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Recorded and shown as they came: what no person types is refused at the edge (red team 14)."""
        return value if value is None else refuse_hidden_characters(value, f"the {info.field_name}")
