"""The worker's signed judgement of a plan, and what the executor requires before it runs one.

The workflow decides that a plan may run from activity results; a result that came through the
task queue may have come from any namespace client polling it, not from a worker (red team 19:
a rogue `verify_decision` had forged approvals counted, and a high-risk change ran). So the
worker that judges a plan signs what it found, and the executor checks, with the key and the
approver list only workers hold: that judgement, and that the decisions approving the plan are
signed, for this plan and approval request, by enough people APPROVERS names who may decide.
Pure functions; `activities/authority.py` asks the approver list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.decision_proof import digest, proven, signed_by_a_front_door
from core.models import Decision, ExecutePlanInput, Judgement, Risk, SafetyReport


def judgement_of(report: SafetyReport, ticket_id: str) -> Judgement:
    """What `report` says about running its plan on `ticket_id`, unsigned."""
    return Judgement(
        ticket_id=ticket_id,
        plan_hash=report.plan_hash,
        risk=report.risk,
        required_approvals=report.required_approvals,
        excluded=list(report.revert.excluded) if report.revert else [],
        approved_rows=[impact.rows_affected for impact in report.impacts],
        approved_row_keys=report.approved_row_keys,
        approved_versions=[impact.rows_version for impact in report.impacts],
    )


def _signed_fields(judgement: Judgement) -> dict[str, object]:
    return judgement.model_dump(mode="json", exclude={"proof"})


def sign_judgement(judgement: Judgement, key: bytes) -> Judgement:
    return judgement.model_copy(update={"proof": digest(_signed_fields(judgement), key)})


def judgement_problem(input: ExecutePlanInput, keys: list[bytes], allow_unsigned: bool) -> str | None:
    """Why the input's judgement does not let its plan run as given, or None."""
    judgement = input.judgement
    if judgement is None:
        return None if allow_unsigned else "no judgement of the plan came with it"
    if judgement.proof or not allow_unsigned:
        if not judgement.proof:
            return "its judgement is unsigned"
        if not proven(judgement.proof, _signed_fields(judgement), keys):
            return "its judgement's signature is bad"
    as_given = (
        input.ticket_id,
        input.plan_hash,
        input.approved_rows,
        input.approved_row_keys,
        input.approved_versions,
    )
    judged = (
        judgement.ticket_id,
        judgement.plan_hash,
        judgement.approved_rows,
        judgement.approved_row_keys,
        judgement.approved_versions,
    )
    if as_given != judged:
        return "it is not the plan, or not the rows, that was judged"
    if judgement.risk is Risk.BLOCKED:
        return "safety policy blocks it"
    return None


@dataclass(frozen=True)
class Approvals:
    """The deciders whose approvals hold, and why each other one does not."""

    valid: list[str]
    refused: list[str]


def signed_approvals(
    input: ExecutePlanInput, judgement: Judgement, keys: list[bytes], allow_unsigned: bool
) -> Approvals:
    """The input's approvals that are signed, for this plan and approval request, by someone who may
    decide on it (not the requester, not excluded); whether APPROVERS names them is asked apart.

    No age limit here: the age of a signature was checked when the decision arrived, and approvals
    may be days apart.
    """
    valid: list[str] = []
    refused: list[str] = []
    for decision in input.approvals:
        problem = _approval_problem(decision, input, judgement, keys, allow_unsigned)
        if problem is not None:
            refused.append(f"{decision.decider}: {problem}")
        elif decision.decider not in valid:
            valid.append(decision.decider)
    return Approvals(valid, refused)


def _approval_problem(
    decision: Decision, input: ExecutePlanInput, judgement: Judgement, keys: list[bytes], allow_unsigned: bool
) -> str | None:
    if not decision.approve:
        return "not an approval"
    if decision.plan_hash != judgement.plan_hash or decision.request_id != input.approval_request_id:
        return "for another plan or approval request"
    if (decision.proof or not allow_unsigned) and not signed_by_a_front_door(decision, keys):
        return "not signed by a front door"
    if decision.decider == input.requester or decision.decider in judgement.excluded:
        return "may not decide on this plan"
    return None


def shortfall(judgement: Judgement, approvers: Sequence[str]) -> str | None:
    """Why `approvers` are too few for the judgement, or None."""
    if len(approvers) >= judgement.required_approvals:
        return None
    return f"it needs {judgement.required_approvals} approval(s) and has {len(approvers)} that hold"
