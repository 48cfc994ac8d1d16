"""The workflow counts a decision only when it proves who made it, and records every other one.

Anyone who can reach Temporal can send the `approve` signal with any `decider`; without the
worker's key (`DECISION_SIGNING_KEY`) such a decision is ignored and audited, so one person
with Temporal access cannot satisfy a two-person rule alone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.decision_proof import sign_decision
from core.models import AuditEventKind, Decision, DecisionSource, OutcomeStatus, Risk, TicketStatus
from core.names import ERROR_UNPROVEN_REQUEST, SIGNAL_APPROVE
from core.request_proof import sign_request
from tests.workflows.fake_activities import ScriptedActivities
from tests.workflows.test_ticket_workflow import awaiting_approval, request, running, status_of

KEY = b"the-worker-and-the-front-doors-share-this-key"
FORGED = b"someone-with-temporal-access-guessed-this-one"


def approval_by(status: TicketStatus, decider: str, source: DecisionSource = DecisionSource.DASHBOARD) -> Decision:
    assert status.approval is not None
    return status.approval.decision(decider, source)


async def decisions_recorded(handle: Any, count: int) -> TicketStatus:
    for _ in range(200):
        status = await status_of(handle)
        if len(status.decisions) >= count:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} decisions recorded")


async def test_only_decisions_signed_with_the_workers_key_count(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.HIGH, required_approvals=2, signing_keys=[KEY], allow_unsigned=False)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        now = datetime.now(UTC)
        tampered = sign_decision(approval_by(status, "alice"), KEY, now).model_copy(update={"decider": "bob"})
        await handle.signal(SIGNAL_APPROVE, approval_by(status, "alice"))  # a raw signal "via dashboard"
        await handle.signal(SIGNAL_APPROVE, approval_by(status, "bob", DecisionSource.SLACK))
        await handle.signal(SIGNAL_APPROVE, sign_decision(approval_by(status, "alice"), FORGED, now))
        await handle.signal(SIGNAL_APPROVE, tampered)
        await handle.signal(SIGNAL_APPROVE, sign_decision(approval_by(status, "bob"), KEY, now - timedelta(hours=2)))
        ignored = await decisions_recorded(handle, 5)
        assert [(r.decision.decider, r.accepted, r.reason) for r in ignored.decisions] == [
            ("alice", False, "unsigned"),
            ("bob", False, "unsigned"),
            ("alice", False, "bad signature"),
            ("bob", False, "bad signature"),
            ("bob", False, "signature expired"),
        ]
        assert ignored.pending_approval and ignored.approved_by == []

        await handle.signal(SIGNAL_APPROVE, sign_decision(approval_by(status, "alice"), KEY, datetime.now(UTC)))
        await handle.signal(SIGNAL_APPROVE, sign_decision(approval_by(status, "bob"), KEY, datetime.now(UTC)))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE and sorted(outcome.decided_by) == ["alice", "bob"]
    audited = [event for event in fakes.events if event.kind is AuditEventKind.DECISION_IGNORED]
    assert len(audited) == 5 and "unsigned" in audited[0].summary


async def test_unsigned_decisions_count_where_they_are_allowed(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, allow_unsigned=True)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, approval_by(status, "carol", DecisionSource.API))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == ["carol"]


async def test_a_malformed_decision_is_recorded_not_dropped(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, allow_unsigned=True)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, {"decider": "bob", "source": "nowhere"})
        await handle.signal(SIGNAL_APPROVE, "approve please")
        recorded = await decisions_recorded(handle, 2)
        assert [(r.decision.decider, r.accepted) for r in recorded.decisions] == [("(malformed)", False)] * 2
        assert all(r.reason.startswith("malformed: ") for r in recorded.decisions)
        assert "source" in recorded.decisions[0].reason
        await handle.signal(SIGNAL_APPROVE, approval_by(status, "bob"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    assert [e.kind for e in fakes.events].count(AuditEventKind.DECISION_IGNORED) == 2


@pytest.mark.parametrize(
    ("signed_before_start", "problem"),
    [
        (timedelta(minutes=11), "signature expired"),
        (-timedelta(minutes=5), "signed in the future"),
    ],
)
async def test_a_request_signed_too_long_before_its_start_or_after_it_is_refused(
    time_env: WorkflowEnvironment, signed_before_start: timedelta, problem: str
) -> None:
    """A signed request is good for one start, soon after the front door signed it."""
    fakes = ScriptedActivities(signing_keys=[KEY], allow_unsigned=False)
    workflow_id = f"ticket-{uuid.uuid4().hex[:10]}"
    ticket = sign_request(request(), workflow_id, KEY, await time_env.get_current_time() - signed_before_start)
    async with running(time_env, fakes, ticket, workflow_id=workflow_id, sign=False) as handle:
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == ERROR_UNPROVEN_REQUEST
    assert problem in failed.value.cause.message
    assert fakes.events == [] and fakes.notifications == []  # nothing recorded, nothing posted


async def test_a_proof_that_is_not_ascii_is_a_bad_signature_and_holds_nothing_up(time_env: WorkflowEnvironment) -> None:
    """`compare_digest` raised on such text; the check was retried for an hour and every later decision on
    the ticket waited behind it (red team 19)."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, signing_keys=[KEY], allow_unsigned=False)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        forged = approval_by(status, "bob").model_copy(update={"proof": "é", "signed_at": datetime.now(UTC)})
        await handle.signal(SIGNAL_APPROVE, forged)
        await handle.signal(SIGNAL_APPROVE, sign_decision(approval_by(status, "carol"), KEY, datetime.now(UTC)))
        outcome = await handle.result()
        final = await status_of(handle)
    assert [(r.decision.decider, r.accepted, r.reason) for r in final.decisions] == [
        ("bob", False, "bad signature"),
        ("carol", True, ""),
    ]
    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == ["carol"]
