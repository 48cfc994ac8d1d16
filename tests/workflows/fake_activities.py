"""Activities registered under the real names, scripted per test, for workflow logic only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import NotifyActivities
from activities.proofs import ProofActivities
from activities.trust import WorkerTrust
from core import names
from core.models import (
    AuditEventKind,
    DecisionCheck,
    ExecutePlanInput,
    ExecutionLookup,
    ExecutionResult,
    Filter,
    FindExecutionInput,
    GatherContextInput,
    NotifyEvent,
    NotifyInput,
    NotifyPost,
    NotifyResult,
    OperationResult,
    Plan,
    PlanRevertInput,
    PlanTicketInput,
    RecordEventInput,
    RecordEventsInput,
    ResolveApproversInput,
    RevertCheck,
    RevertPlan,
    Risk,
    SafetyReport,
    TicketContext,
    TicketStatus,
    UpdateOperation,
    ValidatePlanInput,
    VerifyDecisionInput,
)
from tests.support import scripted_report
from worker.build import ActivitySet

UPGRADE_PLAN = Plan(
    summary="Move acme-corp to the pro plan",
    operations=[
        UpdateOperation(
            table="subscriptions",
            values=[{"column": "plan_id", "value": 3}],
            filters=[Filter(column="customer_id", op="eq", value=1)],
        )
    ],
    planner="fake",
)


def answering() -> asyncio.Event:
    answers = asyncio.Event()
    answers.set()
    return answers


@dataclass
class Notified:
    """One thing the notifier was asked to show: the message's state, or a one-off post."""

    event: NotifyEvent
    status: TicketStatus


@dataclass
class ScriptedActivities:
    """What each activity answers; every call is recorded for assertions."""

    risk: Risk = Risk.LOW
    required_approvals: int = 0
    plan: Plan = field(default_factory=lambda: UPGRADE_PLAN.model_copy(deep=True))
    plan_error: str | None = None
    approvers: list[str] | None = None
    events: list[RecordEventInput] = field(default_factory=list)
    notifications: list[Notified] = field(default_factory=list)
    executions: list[ExecutePlanInput] = field(default_factory=list)
    feedback_seen: list[list[str]] = field(default_factory=list)
    signing_keys: list[bytes] = field(default_factory=list)
    allow_unsigned: bool = True
    trail: list[str] = field(default_factory=list)  # audit writes and steps that leave the worker, in order
    original_requester: str = "erin"  # of the ticket a revert undoes
    context_down_locally: bool = False  # the context read fails on the worker's local tries, then works durably
    # The app DB goes down as the ticket ends: the outcome's batch fails locally and on its first durable try.
    app_db_down_at_the_end: bool = False
    app_db_down: bool = False  # every audit write fails while set (a test sets and clears it)
    # Audit writes hang while this is clear (a held lock), then go through.
    app_db_answers: asyncio.Event = field(default_factory=answering)
    refused_with: AuditEventKind | None = None  # batches holding an event of this kind fail while set, as if down
    refused_durably: int = 0  # audit writes refused while down on their durable tries (past the local ones)
    # The execution commits, then cannot answer (a worker gone past the step's bound, a result Temporal
    # refuses): its ledger row is what says it ran. `execute_fails_before_commit` fails it with nothing written.
    execute_fails_after_commit: bool = False
    execute_fails_before_commit: bool = False
    ledger: dict[str, ExecutionResult] = field(default_factory=dict)  # plan hash → stored result
    plan_answers: asyncio.Event = field(default_factory=answering)  # the LLM hangs while this is clear
    execute_answers: asyncio.Event = field(default_factory=answering)  # the plan's run hangs while this is clear
    executing: asyncio.Event = field(default_factory=asyncio.Event)  # set once the plan's run has started
    # An audit write commits, then does not answer while this is clear (the app DB slow to reply).
    audit_answers_after_write: asyncio.Event = field(default_factory=answering)
    checks_answer: asyncio.Event = field(default_factory=answering)  # decision checks hang while this is clear

    @activity.defn(name=names.ACTIVITY_RECORD_EVENTS)
    async def record_events(self, batch: RecordEventsInput) -> None:
        await self.app_db_answers.wait()
        if self.app_db_down or any(event.kind is self.refused_with for event in batch.events):
            self.refused_durably += 0 if activity.info().is_local else 1
            raise ApplicationError("app DB down (scripted)")
        ending = any(event.kind in (AuditEventKind.FINISHED, AuditEventKind.FAILED) for event in batch.events)
        if self.app_db_down_at_the_end and ending and (activity.info().is_local or activity.info().attempt == 1):
            raise ApplicationError("app DB down (scripted)")
        await self.append(batch.events)
        await self.audit_answers_after_write.wait()

    async def append(self, events: Sequence[RecordEventInput], *, key: str | None = None) -> None:
        """Records the events as the real audit writer would append them: each event key once (an attempt
        that timed out on the server may still write after a later one did)."""
        recorded = {event.detail.get(names.AUDIT_EVENT_KEY) for event in self.events} - {None}
        events = [event for event in events if event.detail.get(names.AUDIT_EVENT_KEY) not in recorded]
        if not events:
            return
        self.events.extend(events)
        self.trail.append("audit " + " ".join(event.kind.value for event in events))

    @activity.defn(name=names.ACTIVITY_GATHER_CONTEXT)
    async def gather_context(self, input: GatherContextInput) -> TicketContext:
        if not activity.info().is_local:  # the durable retry leaves the worker: it is on the trail
            self.trail.append("context")
        elif self.context_down_locally:
            self.trail.append("context tried locally")
            raise ApplicationError("target DB down (scripted)")
        return TicketContext()

    @activity.defn(name=names.ACTIVITY_PLAN_TICKET)
    async def plan_ticket(self, input: PlanTicketInput) -> Plan:
        self.feedback_seen.append(list(input.feedback))
        self.trail.append("plan")
        await self.plan_answers.wait()
        if self.plan_error:
            raise ApplicationError(self.plan_error, non_retryable=True)
        return self.plan

    @activity.defn(name=names.ACTIVITY_PLAN_REVERT)
    async def plan_revert(self, input: PlanRevertInput) -> RevertPlan:
        self.trail.append("plan revert")
        return RevertPlan(plan=self.plan.model_copy(update={"planner": "revert"}))

    @activity.defn(name=names.ACTIVITY_VALIDATE_PLAN)
    async def validate_plan(self, input: ValidatePlanInput) -> SafetyReport:
        report = scripted_report(input.plan, self.risk, self.required_approvals)
        if input.judged_reverts is not None:  # the original's requester may ask for the revert, not approve it
            report.revert = RevertCheck(
                reverts=input.judged_reverts.workflow_id,
                original_requester=self.original_requester,
                excluded=[self.original_requester],
            )
        return report

    @activity.defn(name=names.ACTIVITY_RESOLVE_APPROVERS)
    async def resolve_approvers(self, input: ResolveApproversInput) -> list[str]:
        return sorted(self.approvers if self.approvers is not None else input.approvers)

    async def includes(self, person: str) -> bool:
        """The worker's APPROVERS, asked at decision time: `approvers` when set, else whoever the ticket names."""
        return self.approvers is None or person in self.approvers

    @activity.defn(name=names.ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        self.executions.append(input)
        self.trail.append("execute")
        self.executing.set()
        await self.execute_answers.wait()
        if self.execute_fails_before_commit:
            raise ApplicationError("the target DB is gone (scripted)", non_retryable=True)
        result = self.ledger.setdefault(
            input.plan_hash,
            ExecutionResult(
                plan_hash=input.plan_hash,
                results=[OperationResult(operation_index=0, kind="update", table="subscriptions", rows_affected=1)],
                executed_at=datetime.now(UTC),
            ),
        )
        if self.execute_fails_after_commit:
            raise ApplicationError("[TMPRL1103] payloads too large (scripted)", non_retryable=True)
        return result

    @activity.defn(name=names.ACTIVITY_FIND_EXECUTION)
    async def find_execution(self, input: FindExecutionInput) -> ExecutionLookup:
        self.trail.append("find execution")
        stored = self.ledger.get(input.plan_hash)
        return ExecutionLookup(result=stored.model_copy(update={"replayed": True}) if stored else None)

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        """The notifier the real notify activity is given (`activities.notify.Notifier`): always delivered."""
        events = [post.kind for post in posts] or [NotifyEvent.STAGE]
        for event in events:
            self.notifications.append(Notified(event=event, status=status))
            self.trail.append(f"notify {event.value}")
        return NotifyResult(delivered=True, posted=[post.key for post in posts])

    def notify_activity(self) -> Callable[[NotifyInput], Awaitable[NotifyResult]]:
        """The real notify activity (it reads the workflow's status), publishing here."""
        return NotifyActivities(self).notify_ticket

    def proof_activities(self) -> list[Callable[..., Awaitable[object]]]:
        """The real proof checks, with this script's keys and approvers."""
        proofs = ProofActivities(WorkerTrust.of(self.signing_keys, self.allow_unsigned, self))

        @activity.defn(name=names.ACTIVITY_VERIFY_DECISION)
        async def verify_decision(input: VerifyDecisionInput) -> DecisionCheck:
            await self.checks_answer.wait()
            return await proofs.verify_decision(input)

        return [proofs.verify_request, verify_decision]

    def activity_set(self) -> ActivitySet:
        return ActivitySet(
            workflow_queue=[
                self.record_events,
                self.gather_context,
                self.validate_plan,
                self.resolve_approvers,
                self.execute_plan,
                self.find_execution,
                self.plan_revert,
                self.notify_activity(),
                *self.proof_activities(),
            ],
            llm_queue=[self.plan_ticket],
        )
