"""Checking proofs on the worker, which holds the signing keys and the approver list.

A ticket goes on only if a front door signed its request; a decision counts only if it proves who
made it, and the approval rules then ask whether that person may decide now.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime

from temporalio import activity

from activities.approvers import ApproverCheck
from core.decision_proof import proof_problem
from core.models import DecisionCheck, RequestCheck, VerifyDecisionInput, VerifyRequestInput
from core.names import ACTIVITY_VERIFY_DECISION, ACTIVITY_VERIFY_REQUEST, short_id_from, ticket_label
from core.request_proof import needs_proof, request_proof_problem

logger = logging.getLogger(__name__)


class ProofActivities:
    """Receives the keys (current first), whether unsigned proofs may pass (`agent-ticket dev`), the
    worker's approvers, and the configured agents' requester names (`agent:<name>`)."""

    def __init__(
        self, keys: list[bytes], allow_unsigned: bool, approvers: ApproverCheck, agents: Collection[str] = ()
    ) -> None:
        self._keys = keys
        self._allow_unsigned = allow_unsigned
        self._approvers = approvers
        self._agents = frozenset(agents)

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
