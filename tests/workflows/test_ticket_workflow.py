"""TicketWorkflow's decisions on the time-skipping server, with scripted activities."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.approval import NO_LONGER_AN_APPROVER, REVERTED_REQUESTER
from core.models import (
    ApprovalSettings,
    AuditEventKind,
    Decision,
    DecisionSource,
    NotifyEvent,
    OutcomeStatus,
    RevertOf,
    Risk,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
    VerifyDecisionInput,
)
from core.names import ACTIVITY_VERIFY_DECISION, QUERY_STATUS, SIGNAL_APPROVE, SIGNAL_REJECT, WORKFLOW_NAME
from core.request_proof import sign_request
from tests.support import wait_for_stage, wait_for_status
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import build_workers

APPROVERS = ["alice", "bob", "carol"]
MARKER = EventType.EVENT_TYPE_MARKER_RECORDED


def request(requester: str = "dave", **approval: object) -> TicketRequest:
    return TicketRequest(
        text="upgrade acme-corp to the pro plan",
        requester=requester,
        approval=ApprovalSettings(approvers=APPROVERS, **approval),  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(
    env: WorkflowEnvironment,
    fakes: ScriptedActivities,
    ticket: TicketRequest,
    *,
    workflow_id: str | None = None,
    sign: bool = True,
) -> AsyncIterator[WorkflowHandle[object, TicketOutcome]]:
    """`ticket` running on workers with `fakes`; signed as a front door does when the fakes hold a key."""
    queue = f"wf-{uuid.uuid4().hex[:8]}"
    workflow_id = workflow_id or f"ticket-{uuid.uuid4().hex[:10]}"
    if sign and fakes.signing_keys:
        ticket = sign_request(ticket, workflow_id, fakes.signing_keys[0], await env.get_current_time())
    async with AsyncExitStack() as stack:
        for worker in build_workers(env.client, fakes.activity_set(), task_queue=queue):
            await stack.enter_async_context(worker)
        handle = await env.client.start_workflow(
            WORKFLOW_NAME, ticket, id=workflow_id, task_queue=queue, result_type=TicketOutcome
        )
        yield handle


async def status_of(handle: WorkflowHandle[object, TicketOutcome]) -> TicketStatus:
    return await handle.query(QUERY_STATUS, result_type=TicketStatus)


async def awaiting_approval(handle: WorkflowHandle[object, TicketOutcome]) -> TicketStatus:
    return await wait_for_stage(handle, handle.id, Stage.AWAITING_APPROVAL, within=10)


def decision(status: TicketStatus, decider: str, approve: bool = True, **changes: str) -> Decision:
    assert status.approval is not None
    return status.approval.decision(decider, DecisionSource.CLI, approve=approve).model_copy(update=changes)


async def test_low_risk_ticket_executes_without_approval(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.LOW)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    assert len(fakes.executions) == 1
    kinds = [event.kind for event in fakes.events]
    assert kinds[0] is AuditEventKind.SUBMITTED
    assert AuditEventKind.EXECUTED in kinds and AuditEventKind.APPROVAL_REQUESTED not in kinds
    assert fakes.notifications[-1].event is NotifyEvent.OUTCOME


async def test_a_plan_that_committed_but_could_not_answer_ends_done_from_its_ledger_row(
    time_env: WorkflowEnvironment,
) -> None:
    """Red team 25: an execution whose result Temporal refused was told `failed` though its change committed."""
    fakes = ScriptedActivities(risk=Risk.LOW, execute_fails_after_commit=True)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE and outcome.execution is not None and outcome.execution.replayed
    assert "find execution" in fakes.trail
    executed = [event for event in fakes.events if event.kind is AuditEventKind.EXECUTED]
    assert len(executed) == 1 and "already applied" in executed[0].summary


async def test_a_plan_that_failed_before_committing_is_told_failed_with_the_executors_reason(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.LOW, execute_fails_before_commit=True)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.reason == "execute_plan failed: the target DB is gone (scripted)"
    assert "find execution" in fakes.trail and fakes.ledger == {}


async def test_a_ticket_whose_context_read_must_wait_is_on_record_before_it_waits(
    time_env: WorkflowEnvironment,
) -> None:
    """Listed before the first try to read the context; what it learnt goes on record from a later task,
    with the plan's batch (`AuditLog.queue`)."""
    fakes = ScriptedActivities(risk=Risk.LOW, context_down_locally=True)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    steps = [step for step in fakes.trail if not step.startswith("notify")]
    assert steps[0] == "audit submitted" and steps[1] == "context tried locally"
    assert steps[steps.index("context") :][:3] == [
        "context",
        "plan",
        "audit context_gathered planned validated decided",
    ]


async def test_an_app_db_down_as_the_ticket_ends_does_not_hold_back_telling_the_outcome(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.LOW, app_db_down_at_the_end=True)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    # Told while the outcome's batch waits for the app DB; then on record, once.
    assert fakes.trail.index("notify outcome") < fakes.trail.index("audit executed finished")
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.FINISHED) == 1 and kinds[-1] is AuditEventKind.NOTIFIED


async def test_a_rejection_while_the_app_db_is_down_is_told_at_once_and_recorded_once_it_is_back(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        fakes.app_db_down = True
        await handle.signal(SIGNAL_REJECT, decision(status, "bob", approve=False, comment="not during the freeze"))
        told = await wait_for_status(handle, handle.id, lambda s: s.outcome is not None and not s.message_owed)
        assert told.outcome is not None and told.outcome.status is OutcomeStatus.REJECTED
        assert [n.event for n in fakes.notifications].count(NotifyEvent.OUTCOME) == 1
        assert AuditEventKind.DECISION_ACCEPTED not in [event.kind for event in fakes.events]  # still waiting
        fakes.app_db_down = False
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.REJECTED
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.DECISION_ACCEPTED) == 1 and kinds.count(AuditEventKind.FINISHED) == 1
    assert kinds.index(AuditEventKind.DECISION_ACCEPTED) < kinds.index(AuditEventKind.FINISHED)  # in order


async def test_a_rejection_while_the_app_db_hangs_is_told_within_seconds(time_env: WorkflowEnvironment) -> None:
    """Red team: three local tries of 5 s each on a locked app DB held the telling for about 15 s."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        fakes.app_db_answers.clear()
        rejected_at = time.monotonic()
        await handle.signal(SIGNAL_REJECT, decision(status, "bob", approve=False, comment="not now"))
        told = await wait_for_status(handle, handle.id, lambda s: s.outcome is not None and not s.message_owed)
        told_after = time.monotonic() - rejected_at
        fakes.app_db_answers.set()
        outcome = await handle.result()
    assert told.outcome is not None and told.outcome.status is OutcomeStatus.REJECTED
    assert told_after < 8, f"told {told_after:.1f} s after the rejection"
    assert outcome.status is OutcomeStatus.REJECTED
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.DECISION_ACCEPTED) == 1 and kinds.count(AuditEventKind.FINISHED) == 1


async def test_an_expiry_after_a_vote_while_the_app_db_is_down_is_told_at_once_and_recorded_once_it_is_back(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=2)
    async with running(time_env, fakes, request(timeout_seconds=3600, reminder_before_seconds=0)) as handle:
        status = await awaiting_approval(handle)
        fakes.app_db_down = True
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))  # one of the two: its event waits for the DB
        await time_env.sleep(timedelta(hours=1, minutes=5))
        told = await wait_for_status(handle, handle.id, lambda s: s.outcome is not None and not s.message_owed)
        assert told.outcome is not None and told.outcome.status is OutcomeStatus.EXPIRED
        assert AuditEventKind.DECISION_ACCEPTED not in [event.kind for event in fakes.events]  # still waiting
        fakes.app_db_down = False
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.EXPIRED and fakes.executions == []
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.DECISION_ACCEPTED) == 1 and kinds.count(AuditEventKind.FINISHED) == 1
    assert kinds.index(AuditEventKind.DECISION_ACCEPTED) < kinds.index(AuditEventKind.FINISHED)  # in order


async def test_the_audit_is_written_before_each_step_that_leaves_and_no_patch_is_asked(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.LOW)
    async with running(time_env, fakes, request()) as handle:
        await handle.result()
        history = await handle.fetch_history()
    steps = [step for step in fakes.trail if not step.startswith("notify")]
    # Audit writes and steps that leave the worker, in order: the log shows every step before what follows it
    # runs, from history alone. What the local context step found waits for the plan's task; what the local
    # validation decided goes first, through the server (no timer), because the plan runs next.
    assert steps == [
        "audit submitted",
        "plan",
        "audit context_gathered planned validated decided",
        "execute",
        "audit executed finished",
        "audit notified",
    ]
    # The outcome is on record before it is told (and the telling's status query never meets that write's task).
    assert fakes.trail.index("notify outcome") > fakes.trail.index("audit executed finished")
    assert [event.event_type for event in history.events].count(EventType.EVENT_TYPE_TIMER_STARTED) == 0
    markers = [event.marker_recorded_event_attributes for event in history.events if event.event_type == MARKER]
    assert not [marker for marker in markers if marker.marker_name == "core_patch"]  # one baseline, no patches
    # The Slack message catches up beside the ticket: the newest state each time, the outcome once.
    assert fakes.notifications[-1].event is NotifyEvent.OUTCOME
    assert [n.event for n in fakes.notifications].count(NotifyEvent.OUTCOME) == 1
    assert fakes.notifications[-1].status.stage is Stage.FINISHED


async def test_blocked_plan_never_executes(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.BLOCKED)
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.BLOCKED
    assert fakes.executions == []


async def test_ignored_decisions_then_approval_executes_once(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request(requester="alice")) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))  # the requester
        await handle.signal(SIGNAL_APPROVE, decision(status, "mallory"))  # not an approver
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob", request_id="stale"))
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob", plan_hash="0" * 16))
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        await handle.signal(SIGNAL_APPROVE, decision(status, "carol"))  # after the decision
        outcome = await handle.result()
        final = await status_of(handle)
    assert outcome.status is OutcomeStatus.DONE
    assert outcome.decided_by == ["bob"]
    assert len(fakes.executions) == 1
    reasons = [record.reason for record in final.decisions if not record.accepted]
    assert reasons[:4] == [
        "the requester cannot decide on their own ticket",
        "not an approver",
        "out of date: a newer approval request replaced this one",
        "out of date: the plan has changed since it was shown",
    ]
    ignored = [event for event in fakes.events if event.kind is AuditEventKind.DECISION_IGNORED]
    assert len(ignored) == len(reasons)


async def test_the_message_shows_each_approval_and_ends_with_the_outcome(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.HIGH, required_approvals=2)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        for _ in range(100):
            if any(n.status.approved_by == ["bob"] for n in fakes.notifications):
                break
            await asyncio.sleep(0.05)
        partial = next(n.status for n in fakes.notifications if n.status.approved_by == ["bob"])
        assert partial.approvals_needed == 1  # "1 of 2": the second approver sees who approved
        await handle.signal(SIGNAL_APPROVE, decision(status, "carol"))
        await handle.result()
    stages = [n.status.stage for n in fakes.notifications]
    assert stages == sorted(stages, key=list(Stage).index)  # never an older state after a newer one
    assert (fakes.notifications[-1].event, stages[-1]) == (NotifyEvent.OUTCOME, Stage.FINISHED)


async def test_high_risk_needs_two_distinct_approvers(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.HIGH, required_approvals=2)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        judged = await wait_for_status(handle, handle.id, lambda s: len(s.decisions) == 2, "both decisions judged")
        assert [record.accepted for record in judged.decisions] == [True, False]
        assert judged.stage is Stage.AWAITING_APPROVAL
        assert fakes.executions == []
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    assert sorted(outcome.decided_by) == ["alice", "bob"]
    assert len(fakes.executions) == 1


async def test_one_reject_ends_the_ticket(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.HIGH, required_approvals=2)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await handle.signal(SIGNAL_REJECT, decision(status, "bob", approve=False, comment="not during the freeze"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.REJECTED
    assert "not during the freeze" in outcome.reason and "bob" in outcome.reason
    assert fakes.executions == []


async def test_wait_of_days_reminds_then_expires(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    ticket = request(timeout_seconds=3 * 24 * 3600, reminder_before_seconds=24 * 3600, escalation_channel="C-ESC")
    async with running(time_env, fakes, ticket) as handle:
        await awaiting_approval(handle)
        outcome = await handle.result()  # the time-skipping server jumps the three days
        final = await status_of(handle)
    assert outcome.status is OutcomeStatus.EXPIRED
    assert final.reminders_sent == 1
    events = [notification.event for notification in fakes.notifications]
    assert NotifyEvent.REMINDER in events and NotifyEvent.ESCALATION in events
    assert fakes.executions == []
    assert outcome.finished_at - final.created_at >= timedelta(days=3)


class SlowChecks(ScriptedActivities):
    """The real decision check, held until `checked` is set: a check still running when a timer fires."""

    checked: asyncio.Event

    def proof_activities(self) -> list[Callable[..., Awaitable[object]]]:
        verify_request, verify_decision = super().proof_activities()
        self.checked = asyncio.Event()

        @activity.defn(name=ACTIVITY_VERIFY_DECISION)
        async def held_check(input: VerifyDecisionInput) -> object:
            await self.checked.wait()
            return await verify_decision(input)

        return [verify_request, held_check]


async def test_an_approval_that_came_before_the_deadline_counts_though_its_check_ends_after(
    time_env: WorkflowEnvironment,
) -> None:
    """Red team 68: the deadline's timer fired while an approval's check ran, and the wait acted on the timer
    first: expired, the approval then ignored. A replay of a lost task that met both at once did the same,
    after the live run had written "alice approved"; decisions that came are now judged first."""
    fakes = SlowChecks(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request(timeout_seconds=60, reminder_before_seconds=0)) as handle:
        status = await awaiting_approval(handle)
        await time_env.sleep(timedelta(seconds=55))
        await handle.signal(SIGNAL_APPROVE, decision(status, "carol"))
        await time_env.sleep(timedelta(seconds=8))  # past the deadline, within the check's 10 s to run
        fakes.checked.set()
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == ["carol"], outcome.reason
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.DECISION_ACCEPTED) == 1 and AuditEventKind.DECISION_IGNORED not in kinds


async def test_approval_after_two_days_still_counts(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        await time_env.sleep(timedelta(days=2, hours=1))
        assert (await status_of(handle)).reminders_sent == 1
        await handle.signal(SIGNAL_APPROVE, decision(status, "carol"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE


async def test_someone_taken_out_of_approvers_while_a_ticket_waits_can_no_longer_decide_on_it(
    time_env: WorkflowEnvironment,
) -> None:
    """The ticket's list is narrowed when approval opens; a removal days later must count too (red team 18)."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, approvers=["alice", "bob"])
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        assert status.approval is not None and status.approval.approvers == ["alice", "bob"]
        await time_env.sleep(timedelta(days=1))
        fakes.approvers = ["bob"]  # APPROVERS changed on the workers while the ticket waited
        await handle.signal(SIGNAL_REJECT, decision(status, "alice", approve=False))
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        outcome = await handle.result()
        final = await status_of(handle)

    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == ["bob"]
    assert [(record.decision.decider, record.accepted, record.reason) for record in final.decisions] == [
        ("alice", False, NO_LONGER_AN_APPROVER),
        ("alice", False, NO_LONGER_AN_APPROVER),
        ("bob", True, ""),
    ]


async def test_planner_failure_ends_failed_with_reason(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(plan_error="the model refused: policy")
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.FAILED
    assert "the model refused" in outcome.reason
    assert fakes.notifications[-1].event is NotifyEvent.OUTCOME


async def test_too_few_approvers_is_blocked_not_left_waiting(time_env: WorkflowEnvironment) -> None:
    fakes = ScriptedActivities(risk=Risk.HIGH, required_approvals=2, approvers=["alice"])
    async with running(time_env, fakes, request()) as handle:
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.BLOCKED
    assert "APPROVERS" in outcome.reason


async def test_revert_plans_from_images_and_its_original_requester_cannot_approve(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, original_requester="alice")
    ticket = request().model_copy(update={"reverts": RevertOf(workflow_id="ticket-T-original1")})
    async with running(time_env, fakes, ticket) as handle:
        status = await awaiting_approval(handle)
        assert status.approval is not None and status.approval.excluded == ["alice"]
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        outcome = await handle.result()
        final = await status_of(handle)

    assert outcome.status is OutcomeStatus.DONE
    assert "plan revert" in fakes.trail and "plan" not in fakes.trail  # the LLM is never asked
    assert [(record.decision.decider, record.accepted, record.reason) for record in final.decisions] == [
        ("alice", False, REVERTED_REQUESTER),
        ("bob", True, ""),
    ]
    assert fakes.executions[0].reverts == "ticket-T-original1"
    noted = [event for event in fakes.events if event.kind is AuditEventKind.REVERTED]
    assert [(event.ticket_id, event.summary) for event in noted] == [
        ("T-original1", f"reverted by T-{final.ticket_id}")
    ]
