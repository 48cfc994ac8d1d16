"""Whether a plan may run, decided again where it runs: the executor's own check of the judgement
and the approvals (core/judgement.py), with the keys and the approver list only workers hold."""

from __future__ import annotations

from activities.approvers import ApproverCheck
from core.judgement import judgement_of, judgement_problem, shortfall, sign_judgement, signed_approvals
from core.models import ExecutePlanInput, SafetyReport


class ExecutionAuthority:
    """Receives the signing keys (current first), whether unsigned proofs may pass (`agent-ticket dev`),
    and the worker's approvers."""

    def __init__(self, keys: list[bytes], allow_unsigned: bool, approvers: ApproverCheck) -> None:
        self._keys = keys
        self._allow_unsigned = allow_unsigned
        self._approvers = approvers

    def vouch(self, report: SafetyReport, ticket_id: str) -> SafetyReport:
        """`report` with this worker's judgement of its plan, signed when the worker holds a key."""
        judgement = judgement_of(report, ticket_id)
        if self._keys:
            judgement = sign_judgement(judgement, self._keys[0])
        return report.model_copy(update={"judgement": judgement})

    async def refusal(self, input: ExecutePlanInput) -> str | None:
        """Why the plan in `input` may not run, or None."""
        problem = judgement_problem(input, self._keys, self._allow_unsigned)
        judgement = input.judgement
        if problem is not None or judgement is None or judgement.required_approvals == 0:
            return problem
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
