"""Checking that a decision proves who made it, on the worker, which holds the signing keys."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from temporalio import activity

from core.decision_proof import proof_problem
from core.models import DecisionCheck, VerifyDecisionInput
from core.names import ACTIVITY_VERIFY_DECISION, ticket_label

logger = logging.getLogger(__name__)


class DecisionProofActivities:
    """Receives the keys (current first) and whether unsigned decisions may count (`agent-ticket dev`)."""

    def __init__(self, keys: list[bytes], allow_unsigned: bool) -> None:
        self._keys = keys
        self._allow_unsigned = allow_unsigned

    @activity.defn(name=ACTIVITY_VERIFY_DECISION)
    async def verify_decision(self, input: VerifyDecisionInput) -> DecisionCheck:
        decision = input.decision
        if not decision.proof and self._allow_unsigned:
            return DecisionCheck()
        problem = proof_problem(decision, self._keys, datetime.now(UTC))
        if problem is not None:
            logger.warning("%s: decision by %s refused: %s", ticket_label(input.ticket_id), decision.decider, problem)
        return DecisionCheck(problem=problem)
