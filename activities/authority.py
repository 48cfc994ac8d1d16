"""Whether a plan may run, decided again where it runs: the executor's own check of the judgement
and the approvals (core/judgement.py), with the keys and the approver list only workers hold."""

from __future__ import annotations

import logging

from activities.trust import WorkerTrust
from core.judgement import judgement_of, judgement_problem, shortfall, sign_judgement, signed_approvals
from core.models import ExecutePlanInput, SafetyReport, TicketRequest
from core.request_proof import needs_proof, signed_for

logger = logging.getLogger(__name__)


class ExecutionAuthority:
    """Receives what the worker trusts proofs with (`activities/trust.py`)."""

    def __init__(self, trust: WorkerTrust) -> None:
        self._keys = trust.keys
        self._allow_unsigned = trust.allow_unsigned
        self._approvers = trust.approvers
        self._agents = trust.agents

    def vouch(
        self, report: SafetyReport, request: TicketRequest | None, workflow_id: str, first_run_id: str = ""
    ) -> SafetyReport:
        """`report` with this worker's judgement of its plan for `workflow_id` (the runs that began with
        `first_run_id`): signed when the worker holds a key and the request is one a front door signed for
        that workflow (or needs no signature)."""
        if request is None:
            return report
        reverts = request.reverts.workflow_id if request.reverts else ""
        judgement = judgement_of(report, workflow_id, request.requester, reverts, first_run_id)
        if request.proof:
            vouched = signed_for(request, workflow_id, self._keys)
        else:
            vouched = not needs_proof(request.requester, self._allow_unsigned, self._agents)
        if not vouched:
            logger.error(
                "%s: the request naming %s is not signed for it; judgement left unsigned",
                workflow_id,
                request.requester,
            )
        elif self._keys:
            judgement = sign_judgement(judgement, self._keys[0])
        return report.model_copy(update={"judgement": judgement})

    async def refusal(self, input: ExecutePlanInput, caller: str) -> str | None:
        """Why the plan in `input`, sent by the workflow `caller`, may not run; None when it may."""
        problem = judgement_problem(input, caller, self._keys, self._allow_unsigned)
        judgement = input.judgement
        if problem is not None or judgement is None:
            return problem
        if judgement.required_approvals == 0:
            # Named approvers would keep the run off the requester's budget and on record as approved (red team 21).
            return "it names approvers, but its judgement needs none" if input.approved_by else None
        approvals = signed_approvals(input, judgement, self._keys, self._allow_unsigned)
        holding = [person for person in approvals.valid if await self._approvers.includes(person)]
        refused = approvals.refused + [
            f"{person}: APPROVERS does not name them now" for person in approvals.valid if person not in holding
        ]
        if refused:
            return "approvals that do not hold: " + "; ".join(refused)
        if sorted(holding) != sorted(set(input.approved_by)):
            return "the approvers it names are not the ones whose approvals came with it"
        return shortfall(judgement, holding)
