"""Reject with feedback and ask for a new plan: the workflow re-plans, and long talks continue as new."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from core.models import AuditEventKind, Decision, OutcomeStatus, Risk, Stage, TicketStatus
from core.names import QUERY_STATUS, SIGNAL_APPROVE, SIGNAL_REJECT
from tests.workflows.fake_activities import ScriptedActivities
from tests.workflows.test_ticket_workflow import awaiting_approval, decision, request, running
from workflows.ticket import ROUNDS_PER_RUN

HISTORY_EVENT_LIMIT = 51_200


def replan(status: TicketStatus, feedback: str) -> Decision:
    return decision(status, "alice", approve=False, comment=feedback).model_copy(update={"replan": True})


async def next_round(handle: object, previous_request_id: str | None) -> TicketStatus:
    """Wait until a new approval request (not the one already answered) is pending."""
    for _ in range(400):
        status = await handle.query(QUERY_STATUS, result_type=TicketStatus)  # type: ignore[attr-defined]
        if (
            status.stage is Stage.AWAITING_APPROVAL
            and status.approval is not None
            and status.approval.request_id != previous_request_id
        ):
            return status
        await asyncio.sleep(0.01)
    raise AssertionError("no new approval request")


async def test_reject_with_feedback_replans_with_it(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        first = await awaiting_approval(handle)
        await handle.signal(SIGNAL_REJECT, replan(first, "only the EU workspace, please"))
        second = await next_round(handle, first.approval.request_id if first.approval else None)
        assert second.review_rounds == 1
        await handle.signal(SIGNAL_APPROVE, decision(second, "bob"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    assert fakes.feedback_seen == [[], ["only the EU workspace, please"]]
    assert any(event.kind is AuditEventKind.REPLAN_REQUESTED for event in fakes.events)
    assert len(fakes.executions) == 1


async def test_replan_without_feedback_is_a_plain_reject(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_REJECT, replan(status, "   "))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.REJECTED


async def test_many_review_rounds_stay_within_history_limits(local_env: WorkflowEnvironment) -> None:
    """Each run is bounded by ROUNDS_PER_RUN, so three runs show it; REVIEW_ROUNDS=500 runs the long version."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    rounds = int(os.environ.get("REVIEW_ROUNDS", "60"))
    async with running(local_env, fakes, request()) as handle:
        previous: str | None = None
        for number in range(rounds):
            status = await next_round(handle, previous)
            assert status.approval is not None
            previous = status.approval.request_id
            await handle.signal(SIGNAL_REJECT, replan(status, f"round {number}: try again"))
        status = await next_round(handle, previous)
        assert status.review_rounds == rounds
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        outcome = await handle.result()

        runs, longest = 0, 0
        async for event_count in _run_lengths(local_env, handle.id):
            runs += 1
            longest = max(longest, event_count)
    assert outcome.status is OutcomeStatus.DONE
    assert len(fakes.executions) == 1
    assert fakes.feedback_seen[-1][-1] == f"round {rounds - 1}: try again"
    assert runs == rounds // ROUNDS_PER_RUN + 1
    assert longest < HISTORY_EVENT_LIMIT // 10


async def _run_lengths(env: WorkflowEnvironment, workflow_id: str):  # type: ignore[no-untyped-def]
    """Event count of each run of the workflow, following the continue-as-new chain."""
    async for execution in env.client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await env.client.get_workflow_handle(workflow_id, run_id=execution.run_id).fetch_history()
        assert history.events[-1].event_type in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        )
        yield len(history.events)


async def test_a_decision_during_the_last_write_before_continuing_as_new_is_on_record_first(
    time_env: WorkflowEnvironment,
) -> None:
    """Red team: a vote that came in while the run's last batch waited for the app DB went with the old run."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)

    async with running(time_env, fakes, request()) as handle:
        previous: str | None = None
        for _ in range(ROUNDS_PER_RUN - 1):
            status = await next_round(handle, previous)
            assert status.approval is not None
            previous = status.approval.request_id
            await handle.signal(SIGNAL_REJECT, replan(status, "try again"))
        status = await next_round(handle, previous)
        # The round's batch waits for the app DB; bob's vote comes in meanwhile and becomes the run's last batch.
        fakes.refused_with = AuditEventKind.REPLAN_REQUESTED
        await handle.signal(SIGNAL_REJECT, replan(status, "the last round of this run"))
        await until(lambda: fakes.refused_durably > 0)
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        await asyncio.sleep(1)  # its proof is checked and its event queued
        fakes.refused_with, fakes.refused_durably = AuditEventKind.DECISION_IGNORED, 0
        await until(lambda: fakes.refused_durably > 0)  # the round's batch is in; bob's waits
        await handle.signal(SIGNAL_APPROVE, decision(status, "carol"))  # too late to count, not to be recorded
        await asyncio.sleep(1)
        fakes.refused_with = None
        await until(lambda: new_run_began(fakes) is not None, within=60)
    last_round, new_run = new_run_began(fakes) or (0, 0)
    for voter in ("bob", "carol"):
        votes = [event for event in fakes.events if event.actor == voter]
        assert len(votes) == 1 and votes[0].kind is AuditEventKind.DECISION_IGNORED, voter
        assert last_round < fakes.events.index(votes[0]) < new_run, voter


def new_run_began(fakes: ScriptedActivities) -> tuple[int, int] | None:
    """Where the run's last round and the next run's first event are in the audit, once both are."""
    kinds = [event.kind for event in fakes.events]
    if kinds.count(AuditEventKind.REPLAN_REQUESTED) < ROUNDS_PER_RUN:
        return None
    last_round = len(kinds) - 1 - kinds[::-1].index(AuditEventKind.REPLAN_REQUESTED)
    if AuditEventKind.CONTEXT_GATHERED not in kinds[last_round:]:
        return None
    return last_round, kinds.index(AuditEventKind.CONTEXT_GATHERED, last_round)


async def until(condition: Callable[[], bool], within: float = 30) -> None:
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")
