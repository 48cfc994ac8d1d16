"""Checking proofs on the worker, which holds the signing keys and the approver list.

A ticket goes on only if a front door signed its request; a decision counts only if it proves who
made it, and the approval rules then ask whether that person may decide now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from temporalio import activity

from activities.trust import WorkerTrust
from core.decision_proof import proof_problem
from core.models import DecisionCheck, RequestCheck, VerifyDecisionInput, VerifyRequestInput
from core.names import ACTIVITY_VERIFY_DECISION, ACTIVITY_VERIFY_REQUEST, short_id_from, ticket_label
from core.request_proof import needs_proof, request_proof_problem

logger = logging.getLogger(__name__)


class ProofActivities:
    """Receives what the worker trusts proofs with (`activities/trust.py`)."""

    def __init__(self, trust: WorkerTrust) -> None:
        self._keys = trust.keys
        self._allow_unsigned = trust.allow_unsigned
        self._approvers = trust.approvers
        self._agents = trust.agents

    @activity.defn(name=ACTIVITY_VERIFY_REQUEST)
    async def verify_request(self, input: VerifyRequestInput) -> RequestCheck:
        request = input.request
        if not request.proof and not needs_proof(request.requester, self._allow_unsigned, self._agents):
            return RequestCheck()
        problem = request_proof_problem(request, input.workflow_id, self._keys, input.started_at)
        if problem is not None:
            label = ticket_label(short_id_from(input.workflow_id))
            logger.error("%s: request naming %s refused: %s", label, request.requester, problem)
        return RequestCheck(problem=problem)

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
