"""The worker's signed judgement of a plan, and what the executor requires before it runs one.

The workflow decides that a plan may run from activity results; a result that came through the
task queue may have come from any namespace client polling it, not from a worker (red team 19:
a rogue `verify_decision` had forged approvals counted, and a high-risk change ran). And any
namespace client can run a workflow of its own that calls the real activities (red team 20: a
revert undone by re-running the reverted plan under a new workflow id). So the worker that
judges a plan signs what it found for the workflow that asked, naming the requester of that
workflow's signed request; the approval request's id is drawn from that signature; and the
executor checks, with the key and the approver list only workers hold, that it runs for that
workflow, on that judgement, with enough approvals signed for that very approval request.
Pure functions; `activities/authority.py` asks the approver list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.decision_proof import SIGNATURE_PREFIX, digest, proven, signed_by_a_front_door
from core.models import Decision, ExecutePlanInput, Judgement, Risk, SafetyReport

JUDGEMENT_TAG_LENGTH = 16
# A plan runs within this long of the approval that completed its quorum, or people are asked again: a
# ticket closed without running (a rogue poller reporting its execution failed, say) leaves no ledger
# row, and its approvals must not stay a licence to run it whenever someone chooses (red team 60).
APPROVALS_GOOD_FOR = timedelta(hours=1)


def judgement_of(
    report: SafetyReport, workflow_id: str, requester: str, reverts: str, first_run_id: str = ""
) -> Judgement:
    """What `report` says about running its plan for `workflow_id` (the runs that began with `first_run_id`),
    unsigned."""
    return Judgement(
        workflow_id=workflow_id,
        first_run_id=first_run_id,
        requester=requester,
        reverts=reverts,
        plan_hash=report.plan_hash,
        risk=report.risk,
        required_approvals=report.required_approvals,
        excluded=list(report.revert.excluded) if report.revert else [],
        approved_rows=[impact.rows_affected for impact in report.impacts],
        approved_row_keys=report.approved_row_keys,
        approved_versions=[impact.rows_version for impact in report.impacts],
        schema_digest=report.schema_digest,
    )


def _signed_fields(judgement: Judgement) -> dict[str, object]:
    return judgement.model_dump(mode="json", exclude={"proof"})


def sign_judgement(judgement: Judgement, key: bytes) -> Judgement:
    return judgement.model_copy(update={"proof": digest(_signed_fields(judgement), key)})


def judgement_tag(judgement: Judgement | None) -> str | None:
    """What every approval request of this signed judgement ends with, so approvals name it; None if unsigned.

    Drawn from the signature: approvals given for one judgement count for no other, on this ticket
    (the rows changed and it was judged again) or any other.
    """
    if judgement is None or not judgement.proof.startswith(SIGNATURE_PREFIX):
        return None
    return judgement.proof.removeprefix(SIGNATURE_PREFIX)[:JUDGEMENT_TAG_LENGTH]


def approval_request_id(round_id: str, judgement: Judgement | None) -> str:
    """An approval request's id: the round's own (a new plan round may judge the same plan the same
    way), then the judgement's tag."""
    tag = judgement_tag(judgement)
    return round_id if tag is None else f"{round_id}-{tag}"


def judgement_problem(input: ExecutePlanInput, caller: str, keys: list[bytes], allow_unsigned: bool) -> str | None:
    """Why the input's judgement does not let its plan run as given by the workflow `caller`, or None."""
    if caller != input.workflow_id:
        return f"it was sent by workflow {caller!r}, not by {input.workflow_id!r}"
    judgement = input.judgement
    if judgement is None:
        return None if allow_unsigned else "no judgement of the plan came with it"
    if judgement.proof or not allow_unsigned:
        if not judgement.proof:
            return "its judgement is unsigned"
        if not proven(judgement.proof, _signed_fields(judgement), keys):
            return "its judgement's signature is bad"
    as_given = (
        input.workflow_id,
        input.requester,
        input.reverts,
        input.plan_hash,
        input.approved_rows,
        input.approved_row_keys,
        input.approved_versions,
    )
    judged = (
        judgement.workflow_id,
        judgement.requester,
        judgement.reverts,
        judgement.plan_hash,
        judgement.approved_rows,
        judgement.approved_row_keys,
        judgement.approved_versions,
    )
    if as_given != judged:
        return "it is not the ticket, the plan or the rows that were judged"
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
    """The input's approvals that are signed, for this judgement's approval request, by someone who may
    decide on it (not the requester, not excluded); whether APPROVERS names them is asked apart.

    No age limit here: the age of a signature was checked when the decision arrived, and approvals
    may be days apart.
    """
    valid: list[str] = []
    refused: list[str] = []
    if len({decision.request_id for decision in input.approvals}) > 1:
        # One request's approvals only: two people who approved in different rounds never agreed at once.
        return Approvals([], ["the approvals answer different approval requests"])
    for decision in input.approvals:
        problem = _approval_problem(decision, judgement, keys, allow_unsigned)
        if problem is not None:
            refused.append(f"{decision.decider}: {problem}")
        elif decision.decider not in valid:
            valid.append(decision.decider)
    return Approvals(valid, refused)


def _approval_problem(decision: Decision, judgement: Judgement, keys: list[bytes], allow_unsigned: bool) -> str | None:
    if not decision.approve:
        return "not an approval"
    tag = judgement_tag(judgement)
    if decision.plan_hash != judgement.plan_hash or (tag is not None and not decision.request_id.endswith(f"-{tag}")):
        return "for another plan or approval request"
    if (decision.proof or not allow_unsigned) and not signed_by_a_front_door(decision, keys):
        return "not signed by a front door"
    if decision.decider == judgement.requester or decision.decider in judgement.excluded:
        return "may not decide on this plan"
    return None


def stale_approvals(approvals: Sequence[Decision], now: datetime) -> str | None:
    """Why `approvals` are too old to run on at `now`, or None.

    Their newest signature counts (earlier ones may be days older: people approve in their own
    time); signed times are covered by the signatures, which the executor's check proves.
    Unsigned approvals (ALLOW_UNSIGNED_DECISIONS) carry no time and are not aged.
    """
    signed = [decision.signed_at for decision in approvals if decision.signed_at is not None]
    if not signed or now - max(signed) <= APPROVALS_GOOD_FOR:
        return None
    hours = APPROVALS_GOOD_FOR.total_seconds() / 3600
    return f"its last approval was given more than {hours:g} hour(s) ago, at {max(signed):%Y-%m-%d %H:%M} UTC"


def shortfall(judgement: Judgement, approvers: Sequence[str]) -> str | None:
    """Why `approvers` are too few for the judgement, or None."""
    if len(approvers) >= judgement.required_approvals:
        return None
    return f"it needs {judgement.required_approvals} approval(s) and has {len(approvers)} that hold"
