"""The approval rules as a small state machine, kept apart from Temporal so each rule reads plainly.

The workflow feeds it every signal; it answers whether the decision counts and why not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.models import ApprovalRequest, Decision, DecisionRecord


class Verdict(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass
class ApprovalGate:
    request: ApprovalRequest
    requester: str
    approved_by: list[str] = field(default_factory=list)
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

    def refusal(self, decision: Decision) -> str | None:
        """Why `decision` does not count, or None when it does."""
        if self.verdict is not Verdict.PENDING:
            return f"the request was already {self.verdict.value}"
        if decision.request_id != self.request.request_id:
            return "stale approval request id"
        if decision.plan_hash != self.request.plan_hash:
            return "plan hash does not match the plan awaiting approval"
        if decision.decider == self.requester:
            return "the requester cannot decide on their own ticket"
        if decision.decider not in self.request.approvers:
            return "not an approver"
        if decision.decider in self.approved_by:
            return "already approved by this person"
        return None

    def apply(self, decision: Decision, received_at: datetime) -> DecisionRecord:
        """Count the decision if the rules allow it; either way return the record to audit."""
        reason = self.refusal(decision)
        if reason is None:
            if decision.approve:
                self.approved_by.append(decision.decider)
            else:
                self.rejected_by = decision.decider
                self.rejection_reason = decision.comment
                self.replan_requested = decision.replan and bool(decision.comment.strip())
        return DecisionRecord(decision=decision, received_at=received_at, accepted=reason is None, reason=reason or "")


def unmet_quorum(approvers: list[str], requester: str, required: int) -> str | None:
    """Why a request can never be approved (too few eligible approvers), or None."""
    eligible = [person for person in approvers if person != requester]
    if len(eligible) < required:
        return (
            f"needs {required} approver(s) other than the requester, but {len(eligible)} are configured (set APPROVERS)"
        )
    return None
