"""The auto-approved ticket's activities chained in plain asyncio: the baseline Temporal is compared with.

It calls the real activity methods (built by the product's `build_activity_set`) in the order
`TicketWorkflow` runs them on the auto-approved path, with the same inputs, inside
`ActivityEnvironment` so `activity.info()` and heartbeats work. No server, no history, no
durability: whatever the workflow takes beyond this is what Temporal costs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio.testing import ActivityEnvironment

from core.models import (
    AuditEventKind,
    ExecutePlanInput,
    ExecutionResult,
    GatherContextInput,
    NotifyEvent,
    NotifyInput,
    OutcomeStatus,
    Plan,
    PlanTicketInput,
    RecordEventInput,
    RecordEventsInput,
    SafetyReport,
    Stage,
    TicketContext,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
    ValidatePlanInput,
)
from core.names import (
    ACTIVITY_EXECUTE_PLAN,
    ACTIVITY_GATHER_CONTEXT,
    ACTIVITY_NOTIFY,
    ACTIVITY_PLAN_TICKET,
    ACTIVITY_RECORD_EVENTS,
    ACTIVITY_VALIDATE_PLAN,
    workflow_id_for,
)
from worker.build import ActivitySet

T = TypeVar("T")


class PlainChain:
    """One ticket's activities, called one after another; `times` holds (activity, seconds)."""

    def __init__(self, activities: ActivitySet, short_id: str) -> None:
        functions = [*activities.workflow_queue, *activities.llm_queue]
        self._functions: dict[str, Callable[..., Any]] = {
            getattr(function, "__temporal_activity_definition").name: function for function in functions
        }
        self.short_id = short_id
        self.workflow_id = workflow_id_for(short_id)
        self.times: list[tuple[str, float]] = []
        self._calls = 0
        self._unrecorded: list[RecordEventInput] = []

    async def _call(self, name: str, argument: Any) -> Any:
        self._calls += 1
        environment = ActivityEnvironment()
        environment.info = dataclasses.replace(
            environment.info,
            activity_type=name,
            activity_id=str(self._calls),
            workflow_id=self.workflow_id,
            workflow_run_id="plain-chain",
        )
        started = time.perf_counter()
        result = environment.run(self._functions[name], argument)
        if isinstance(result, Awaitable):
            result = await result
        self.times.append((name, time.perf_counter() - started))
        return result

    async def _record(self, status: TicketStatus, kind: AuditEventKind, summary: str, **fields: Any) -> None:
        """Queued, then written as one batch before the next step off the worker, as the workflow does."""
        self._unrecorded.append(
            RecordEventInput(
                ticket_id=self.short_id,
                kind=kind,
                summary=summary,
                stage=status.stage,
                status=status.status_label,
                **fields,
            )
        )

    async def _flush(self) -> None:
        if self._unrecorded:
            batch, self._unrecorded = self._unrecorded, []
            await self._call(ACTIVITY_RECORD_EVENTS, RecordEventsInput(events=batch))

    async def _notify(self, status: TicketStatus, event: NotifyEvent) -> None:
        await self._flush()
        await self._call(ACTIVITY_NOTIFY, NotifyInput(event=event, status=status))

    async def run(self, request: TicketRequest) -> TicketOutcome:
        """The auto-approved path of `TicketWorkflow.run`, step for step."""
        now = datetime.now(UTC)
        status = TicketStatus(
            ticket_id=self.short_id,
            workflow_id=self.workflow_id,
            request=request,
            stage=Stage.RECEIVED,
            created_at=now,
            updated_at=now,
        )
        await self._record(status, AuditEventKind.SUBMITTED, "submitted", request=request)
        await self._notify(status, NotifyEvent.STAGE)
        status.stage = Stage.GATHERING_CONTEXT
        context: TicketContext = await self._call(
            ACTIVITY_GATHER_CONTEXT, GatherContextInput(ticket_id=self.short_id, request=request)
        )
        status.stage = Stage.PLANNING
        plan: Plan = await self._call(
            ACTIVITY_PLAN_TICKET, PlanTicketInput(ticket_id=self.short_id, request=request, context=context)
        )
        status.plan = plan
        await self._record(status, AuditEventKind.PLANNED, f"{len(plan.operations)} operation(s)")
        status.stage = Stage.VALIDATING
        report: SafetyReport = await self._call(
            ACTIVITY_VALIDATE_PLAN, ValidatePlanInput(ticket_id=self.short_id, plan=plan)
        )
        status.report = report
        await self._record(status, AuditEventKind.VALIDATED, f"risk {report.risk.value}", risk=report.risk)
        if report.required_approvals != 0:
            raise ValueError(f"{request.text!r} needs approval; the plain chain covers the auto-approved path only")
        await self._record(status, AuditEventKind.DECIDED, "runs without approval")
        status.stage = Stage.EXECUTING
        await self._flush()
        result: ExecutionResult = await self._call(
            ACTIVITY_EXECUTE_PLAN,
            ExecutePlanInput(
                ticket_id=self.short_id,
                workflow_id=self.workflow_id,
                plan=plan,
                plan_hash=report.plan_hash,
                approved_rows=[impact.rows_affected for impact in report.impacts],
            ),
        )
        await self._record(status, AuditEventKind.EXECUTED, f"{result.rows_changed} row(s) changed")
        outcome = TicketOutcome(status=OutcomeStatus.DONE, reason="executed", execution=result, finished_at=now)
        status.outcome = outcome
        status.stage = Stage.FINISHED
        await self._record(status, AuditEventKind.FINISHED, "done")
        await self._notify(status, NotifyEvent.OUTCOME)
        await self._record(status, AuditEventKind.NOTIFIED, "requester told the outcome")
        await self._flush()
        return outcome

    def activity_seconds(self) -> float:
        return sum(seconds for _, seconds in self.times)
