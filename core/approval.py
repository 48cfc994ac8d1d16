"""The approval rules as a small state machine, kept apart from Temporal so each rule reads plainly.

The workflow feeds it every decision and is the one judge: it answers whether the decision
counts and why not. Front doors may ask `refusal_preview` first, only to phrase an answer
(or to hide a button); whatever they send still goes to the workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from core.models import ApprovalRequest, Decision, DecisionRecord, TicketStatus, malformed_decision
from core.models.text import escape_hidden

MAX_PROBLEM_TEXT = 300

# Why a decision is ignored: recorded in the status and the audit log as they are.
STALE_REQUEST = "out of date: a newer approval request replaced this one"
STALE_PLAN = "out of date: the plan has changed since it was shown"
REQUESTER = "the requester cannot decide on their own ticket"
REVERTED_REQUESTER = "the requester of the change being reverted cannot decide on its revert"
NOT_AN_APPROVER = "not an approver"
# Judged by the worker when the decision comes, so a removal from APPROVERS counts on waiting tickets too.
NO_LONGER_AN_APPROVER = "not an approver: the workers' APPROVERS no longer name this person"
ALREADY_APPROVED = "already approved by this person"
NOTHING_PENDING = "no approval is pending"
# The same, said to the person who decided.
IN_WORDS = {
    STALE_REQUEST: "This approval request is out of date: a newer one replaced it. Review the current plan.",
    STALE_PLAN: "This approval request is out of date: the plan has changed since it was shown.",
    REQUESTER: "You filed this ticket, so someone else must decide on it.",
    REVERTED_REQUESTER: "You asked for the change this ticket reverts, so someone else must decide on it.",
    NOT_AN_APPROVER: "You are not an approver for this ticket.",
    NO_LONGER_AN_APPROVER: "You are no longer an approver: APPROVERS does not name you now.",
    ALREADY_APPROVED: "You have already approved this ticket.",
}


def in_words(reason: str) -> str:
    """A refusal reason as a sentence for the person who decided."""
    return IN_WORDS.get(reason, reason[:1].upper() + reason[1:] + ".")


class Verdict(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass
class ApprovalGate:
    request: ApprovalRequest
    requester: str
    approved_by: list[str] = field(default_factory=list)
    approvals: list[Decision] = field(default_factory=list)  # the counted ones, proofs and all, for the executor
    rejected_by: str | None = None
    rejection_reason: str = ""
    replan_requested: bool = False

    @property
    def verdict(self) -> Verdict:
        if self.rejected_by is not None:
            return Verdict.REJECTED
        if len(self.approved_by) >= self.request.required_approvals:
            return Verdict.APPROVED
        return Verdict.PENDING

    @property
    def outcome_label(self) -> str:
        """How the wait ended, for the wait-time metric: approved, rejected, replan or expired."""
        if self.replan_requested:
            return "replan"
        if self.verdict is Verdict.PENDING:
            return "expired"
        return self.verdict.value

    def refusal(self, decision: Decision, *, configured_approver: bool = True) -> str | None:
        """Why `decision` does not count, or None when it does.

        `configured_approver`: whether the workers' APPROVERS names the decider now; the ticket's list
        was narrowed to it when approval opened, and may be days old.
        """
        if self.verdict is not Verdict.PENDING:
            return f"the request was already {self.verdict.value}"
        if decision.request_id != self.request.request_id:
            return STALE_REQUEST
        if decision.plan_hash != self.request.plan_hash:
            return STALE_PLAN
        if decision.decider == self.requester:
            return REQUESTER
        if decision.decider in self.request.excluded:
            return REVERTED_REQUESTER
        if decision.decider not in self.request.approvers:
            return NOT_AN_APPROVER
        if not configured_approver:
            return NO_LONGER_AN_APPROVER
        if decision.decider in self.approved_by:
            return ALREADY_APPROVED
        return None

    def apply(self, decision: Decision, received_at: datetime, *, configured_approver: bool = True) -> DecisionRecord:
        """Count the decision if the rules allow it; either way return the record to audit."""
        reason = self.refusal(decision, configured_approver=configured_approver)
        if reason is None:
            if decision.approve:
                self.approved_by.append(decision.decider)
                self.approvals.append(decision)
            else:
                self.rejected_by = decision.decider
                self.rejection_reason = decision.comment
                self.replan_requested = decision.replan and bool(decision.comment.strip())
        return DecisionRecord(decision=decision, received_at=received_at, accepted=reason is None, reason=reason or "")


def unmet_quorum(approvers: list[str], excluded: list[str], required: int) -> str | None:
    """Why a request can never be approved (too few eligible approvers), or None.

    `excluded` is who may not decide: the requester, and for a revert the original's requester.
    """
    eligible = [person for person in approvers if person not in excluded]
    if len(eligible) < required:
        others = "the requester" if len(set(excluded)) <= 1 else "the requesters of the ticket and of the change"
        return f"needs {required} approver(s) other than {others}, but {len(eligible)} are configured (set APPROVERS)"
    return None


def parse_decision(payload: Any, approve: bool) -> tuple[Decision, str | None]:
    """The decision in `payload`, or a stand-in and why it is malformed; `approve` is what the signal's name says."""
    if isinstance(payload, dict):
        payload = {**payload, "approve": approve}
    try:
        return Decision.model_validate(payload), None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}"
            for problem in error.errors()[:3]
        )
        # Shown and recorded: escaped, should a message ever quote what the payload held.
        return malformed_decision(approve), escape_hidden(f"malformed: {problems}")[:MAX_PROBLEM_TEXT]


def refusal_preview(status: TicketStatus, decision: Decision) -> str | None:
    """What the workflow would answer `decision` with now, by the same rules; None if it would count."""
    if not status.pending_approval or status.approval is None:
        return f"it is not waiting for approval ({status.status_label})"
    gate = ApprovalGate(
        request=status.approval, requester=status.request.requester, approved_by=list(status.approved_by)
    )
    return gate.refusal(decision)
