"""Approval requests and the decisions people send on them, as the workflow records them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator

from core.models.base import Model
from core.models.text import refuse_hidden_characters


class DecisionSource(StrEnum):
    SLACK = "slack"
    DASHBOARD = "dashboard"
    CLI = "cli"
    API = "api"


class ApprovalRequest(Model):
    request_id: str
    plan_hash: str
    approvers: list[str] = Field(default_factory=list)
    required_approvals: int = 1
    requested_at: datetime
    deadline: datetime
    reminder_at: datetime | None = None
    # Who may not decide besides the requester: for a revert, whoever asked for the change it undoes.
    excluded: list[str] = Field(default_factory=list)

    def decision(self, decider: str, source: DecisionSource, *, approve: bool = True, comment: str = "") -> Decision:
        """A decision on this request, naming its id and plan hash so the workflow can tell it is current."""
        return Decision(
            approve=approve,
            decider=decider,
            source=source,
            request_id=self.request_id,
            plan_hash=self.plan_hash,
            comment=comment,
        )


class Decision(Model):
    """The payload of the `approve` and `reject` signals (docs/decisions.md)."""

    approve: bool
    decider: str = Field(min_length=1, max_length=200)
    source: DecisionSource
    request_id: str = Field(max_length=100)
    plan_hash: str = Field(max_length=100)
    comment: str = Field(default="", max_length=2000)
    replan: bool = False  # a reject that asks for a new plan, with `comment` as the feedback
    # Names this decision, so the client that sent it can find the workflow's verdict in `status`.
    id: str = Field(default="", max_length=64)
    # Set by the front door that authenticated the decider (core/decision_proof.py).
    signed_at: datetime | None = None
    proof: str = Field(default="", max_length=200)

    @field_validator("comment")
    @classmethod
    def _screen_comment(cls, value: str) -> str:
        """Comments and reasons are shown to people and fed to the planner: screened like ticket text."""
        return refuse_hidden_characters(value, "the comment")

    @field_validator("decider", "request_id", "plan_hash", "id", "proof")
    @classmethod
    def _screen_names(cls, value: str, info: ValidationInfo) -> str:
        """Names and keys are recorded and shown as they came: any client can send a signal (red team 13)."""
        return refuse_hidden_characters(value, f"the {info.field_name}")


# Stands in for a payload that did not parse, so its record still shows in the status and the audit.
MALFORMED_DECIDER = "(malformed)"


def malformed_decision(approve: bool) -> Decision:
    return Decision(approve=approve, decider=MALFORMED_DECIDER, source=DecisionSource.API, request_id="", plan_hash="")


class DecisionRecord(Model):
    """A decision as the workflow saw it: counted, or ignored and why."""

    decision: Decision
    received_at: datetime
    accepted: bool
    reason: str = ""


class VerifyDecisionInput(Model):
    ticket_id: str
    decision: Decision


class DecisionCheck(Model):
    """The worker's verdict on a decision: its proof's problem (None when sound), and whether the
    worker's `APPROVERS` names the decider now, which the approval rules weigh after their own."""

    problem: str | None = None
    configured_approver: bool = True
