"""Checking a decision on the worker, which holds the signing keys and the approver list.

A decision counts only if it proves who made it and that person may decide now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from temporalio import activity

from activities.approvers import ApproverCheck
from core.decision_proof import proof_problem
from core.models import DecisionCheck, VerifyDecisionInput
from core.names import ACTIVITY_VERIFY_DECISION, ticket_label

logger = logging.getLogger(__name__)


class DecisionProofActivities:
    """Receives the keys (current first), whether unsigned decisions may count (`agent-ticket dev`), and
    the worker's approvers."""

    def __init__(self, keys: list[bytes], allow_unsigned: bool, approvers: ApproverCheck) -> None:
        self._keys = keys
        self._allow_unsigned = allow_unsigned
        self._approvers = approvers

    @activity.defn(name=ACTIVITY_VERIFY_DECISION)
    async def verify_decision(self, input: VerifyDecisionInput) -> DecisionCheck:
        decision = input.decision
        problem = None
        if decision.proof or not self._allow_unsigned:
            problem = proof_problem(decision, self._keys, datetime.now(UTC))
        if problem is not None:
            logger.warning("%s: decision by %s refused: %s", ticket_label(input.ticket_id), decision.decider, problem)
            return DecisionCheck(problem=problem)
        return DecisionCheck(configured_approver=await self._approvers.includes(decision.decider))
