"""`TicketWorkflow`: one ticket from request to outcome, durably.

Orchestration only: every read or write of the world is an activity, every decision
here is deterministic, so a replay of the history always takes the same path.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core import search_attributes as ticket_search
    from core.models import (
        ApprovalRequest,
        AuditEventKind,
        ContinuedTicket,
        Decision,
        DecisionRecord,
        ExecutePlanInput,
        ExecutionResult,
        GatherContextInput,
        NotifyEvent,
        NotifyInput,
        NotifyResult,
        OutcomeStatus,
        Plan,
        PlanTicketInput,
        RecordEventInput,
        ResolveApproversInput,
        Risk,
        SafetyReport,
        Stage,
        TicketContext,
        TicketOutcome,
        TicketRequest,
        TicketStatus,
        ValidatePlanInput,
    )
    from workflows import metrics as ticket_metrics
    from workflows import options
    from workflows.approval import ApprovalGate, Verdict, unmet_quorum
    from workflows.audit_log import AuditLog
    from workflows.search_index import TicketIndex
    from workflows.steps import Step, run_step


# Patch ids (see docs/contributing.md): each marks a change made while tickets were running.
PATCH_SEARCH_ATTRIBUTES = "upsert-ticket-search-attributes"
PATCH_LOCAL_READS = "context-and-validation-as-local-activities"
PATCH_BATCHED_AUDIT = "audit-events-written-in-batches"
PATCH_LOCAL_NOTIFY = "local-notifications-and-executing-notice"
# The one patch tickets begun since ask about: it stands for all of the above, and for two more
# changes (search attributes upserted together, the audit carried by the step that leaves next).
PATCH_COALESCED = "coalesced-upserts-and-audit-carried-by-next-step"

# Review rounds (reject with feedback, plan again) per run before continuing as new.
ROUNDS_PER_RUN = 20
MAX_FEEDBACK_KEPT = 10


class TicketFailed(Exception):
    """A step failed for good (its retries are spent or retrying cannot help)."""


@workflow.defn(name=names.WORKFLOW_NAME)
class TicketWorkflow:
    @workflow.init
    def __init__(self, request: TicketRequest) -> None:
        now = workflow.now()
        workflow_id = workflow.info().workflow_id
        continued = request.continued
        self._status = TicketStatus(
            ticket_id=names.short_id_from(workflow_id),
            workflow_id=workflow_id,
            request=request.model_copy(update={"continued": None}),
            stage=Stage.RECEIVED,
            created_at=continued.created_at if continued else now,
            updated_at=now,
            slack_message=continued.slack_message if continued else None,
            feedback=list(continued.feedback) if continued else [],
            review_rounds=continued.rounds if continued else 0,
        )
        self._gate: ApprovalGate | None = None
        self._audit = AuditLog()
        self._rounds_this_run = 0
        self._approvers: list[str] | None = None
        self._local_reads = False
        self._local_notify = False
        self._carry_audit = False
        # Started with the ticket search attributes, so the namespace has them and upserts are safe.
        self._index = TicketIndex(
            enabled=workflow.info().typed_search_attributes.get(ticket_search.TICKET_REQUESTER) is not None
        )

    # ------------------------------------------------------------ handlers

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> TicketStatus:
        return self._status

    @workflow.signal(name=names.SIGNAL_APPROVE)
    def approve(self, decision: Decision) -> None:
        self._receive(decision)

    @workflow.signal(name=names.SIGNAL_REJECT)
    def reject(self, decision: Decision) -> None:
        self._receive(decision)

    def _receive(self, decision: Decision) -> None:
        """Count or ignore a decision; either way it is audited by the run loop."""
        now = workflow.now()
        if self._gate is None:
            record = DecisionRecord(decision=decision, received_at=now, accepted=False, reason="no approval is pending")
        else:
            record = self._gate.apply(decision, now)
        self._status.decisions.append(record)
        accepted, record_reason = record.accepted, record.reason
        ticket_metrics.decision_received(accepted)
        verb = "approved" if decision.approve else "rejected"
        self._audit.queue(
            RecordEventInput(
                ticket_id=self._status.ticket_id,
                kind=AuditEventKind.DECISION_ACCEPTED if accepted else AuditEventKind.DECISION_IGNORED,
                actor=decision.decider,
                source=decision.source.value,
                summary=f"{decision.decider} {verb}" + ("" if accepted else f" (ignored: {record_reason})"),
                detail={
                    "request_id": decision.request_id,
                    "plan_hash": decision.plan_hash,
                    "comment": decision.comment,
                },
            )
        )
        workflow.logger.info("decision from %s: %s", decision.decider, "counted" if accepted else record_reason)

    # ------------------------------------------------------------ the ticket's path

    @workflow.run
    async def run(self, request: TicketRequest) -> TicketOutcome:
        # Patches are asked once, before any other command: every replay meets the markers first,
        # whatever cache evictions or queries replay it, and tickets that old workers began keep their
        # path. Each marker costs every ticket two history events and a visibility write, so tickets
        # begun since the last one carry that marker alone and take every change at once.
        if workflow.patched(PATCH_COALESCED):
            self._local_reads = self._audit.batched = self._local_notify = True
            # Search attributes go out in one upsert when the ticket leaves the worker, not one per
            # stage. The queued audit events ride with the next notification or plan execution, which
            # write them before they act (a notification also writes its own delivery after): no
            # local activity of their own, and no activation to resume from it.
            self._index.coalesced = self._carry_audit = True
        else:
            self._ask_earlier_patches()
        if request.continued is None:
            await self._record(AuditEventKind.SUBMITTED, f"submitted via {request.source.value}", request=request)
            await self._notify(NotifyEvent.STAGE)
        try:
            return await self._process(self._status.request)
        except TicketFailed as failure:
            return await self._finish(OutcomeStatus.FAILED, str(failure))

    def _ask_earlier_patches(self) -> None:
        """The path of tickets begun before PATCH_COALESCED, one marker per change."""
        if self._index.enabled:
            self._index.enabled = workflow.patched(PATCH_SEARCH_ATTRIBUTES)
        # Gathering context and validating only read, briefly, from the databases: as local activities
        # they run on this worker with no server round trip or extra workflow task each (tickets begun
        # before this patch keep scheduling them as activities).
        self._local_reads = workflow.patched(PATCH_LOCAL_READS)
        # Audit events queue up and are written together, in one local activity, before the ticket
        # next leaves this worker (a step on another queue, a wait, the end): the log still shows
        # every step before anything that follows it can happen, with fewer writes and activations.
        self._audit.batched = workflow.patched(PATCH_BATCHED_AUDIT)
        # A notification is one short Slack call that edits the ticket's one message in place (the
        # notifier keeps its timestamp in the app DB, so a rerun edits rather than posts again): as a
        # local activity it costs no workflow task of its own, two fewer per ticket. Tickets begun with
        # it also update their message when an approved plan starts running, so the buttons go.
        self._local_notify = workflow.patched(PATCH_LOCAL_NOTIFY)

    async def _process(self, request: TicketRequest) -> TicketOutcome:
        ticket_id = self._status.ticket_id
        self._set_stage(Stage.GATHERING_CONTEXT)
        context: TicketContext = await self._activity(
            Step(names.ACTIVITY_GATHER_CONTEXT, options.GATHER_CONTEXT, TicketContext, local=self._local_reads),
            GatherContextInput(ticket_id=ticket_id, request=request),
        )
        self._status.context_summary = context.summary()

        decided_by: list[str] = []
        while True:
            plan, report = await self._plan_and_validate(request, context)
            if report.risk is Risk.BLOCKED:
                reasons = "; ".join(f.message for f in report.findings if f.risk is Risk.BLOCKED)
                await self._record(AuditEventKind.DECIDED, "blocked by safety policy")
                return await self._finish(OutcomeStatus.BLOCKED, f"blocked by safety policy: {reasons}")
            if report.required_approvals == 0:
                await self._record(AuditEventKind.DECIDED, f"risk {report.risk.value}: runs without approval")
                break
            await self._record(
                AuditEventKind.DECIDED, f"risk {report.risk.value} needs {report.required_approvals} approval(s)"
            )
            outcome = await self._await_approval(request, report)
            if outcome is not None:
                return outcome
            assert self._gate is not None
            if not self._gate.replan_requested:
                decided_by = list(self._gate.approved_by)
                break
            await self._start_new_round(request)

        self._set_stage(Stage.EXECUTING)
        if decided_by and self._local_notify:
            await self._notify(NotifyEvent.STAGE)  # the decision is in: the approval buttons come off now
        result: ExecutionResult = await self._activity(
            Step(names.ACTIVITY_EXECUTE_PLAN, options.EXECUTE_PLAN, ExecutionResult),
            ExecutePlanInput(
                ticket_id=ticket_id,
                workflow_id=self._status.workflow_id,
                plan=plan,
                plan_hash=report.plan_hash,
                approved_rows=[impact.rows_affected for impact in report.impacts],
                events=self._audit.take() if self._carry_audit else [],
            ),
        )
        await self._record(
            AuditEventKind.EXECUTED,
            f"{result.rows_changed} row(s) changed" + (" (already applied)" if result.replayed else ""),
            detail={"plan_hash": result.plan_hash, "replayed": result.replayed},
        )
        return await self._finish(
            OutcomeStatus.DONE,
            f"executed: {result.rows_changed} row(s) changed",
            execution=result,
            decided_by=decided_by,
        )

    async def _plan_and_validate(self, request: TicketRequest, context: TicketContext) -> tuple[Plan, SafetyReport]:
        ticket_id = self._status.ticket_id
        self._set_stage(Stage.PLANNING)
        plan: Plan = await self._activity(
            Step(names.ACTIVITY_PLAN_TICKET, options.PLAN_TICKET, Plan, task_queue=f"{workflow.info().task_queue}-llm"),
            PlanTicketInput(ticket_id=ticket_id, request=request, context=context, feedback=self._status.feedback),
        )
        self._status.plan = plan
        await self._record(
            AuditEventKind.PLANNED,
            f"{len(plan.operations)} operation(s) by {plan.planner}: {plan.summary}",
            detail={"planner": plan.planner, "operations": len(plan.operations)},
        )

        self._set_stage(Stage.VALIDATING)
        report: SafetyReport = await self._activity(
            Step(names.ACTIVITY_VALIDATE_PLAN, options.VALIDATE_PLAN, SafetyReport, local=self._local_reads),
            ValidatePlanInput(ticket_id=ticket_id, plan=plan),
        )
        self._status.report = report
        self._status.plan_hash = report.plan_hash
        self._index.update(ticket_search.TICKET_RISK.value_set(report.risk.value))
        if self._status.review_rounds == 0:
            ticket_metrics.plan_ready(self._status.created_at)
        await self._record(
            AuditEventKind.VALIDATED,
            f"risk {report.risk.value}, {report.rows_affected} row(s) affected, {len(report.findings)} finding(s)",
            risk=report.risk,
            detail={"plan_hash": report.plan_hash, "findings": [f.rule for f in report.findings]},
        )
        return plan, report

    async def _start_new_round(self, request: TicketRequest) -> None:
        """A reviewer rejected with feedback and asked for a new plan: plan again with it.

        Each round adds to the history, so a long conversation continues as new
        (same workflow id, fresh history) before Temporal's limits come near.
        """
        assert self._gate is not None
        feedback = self._gate.rejection_reason.strip()
        self._status.feedback = [*self._status.feedback, feedback][-MAX_FEEDBACK_KEPT:]
        self._status.review_rounds += 1
        self._rounds_this_run += 1
        self._gate = None
        await self._record(
            AuditEventKind.REPLAN_REQUESTED,
            f"new plan requested: {feedback}",
            detail={"round": self._status.review_rounds},
        )
        if self._rounds_this_run >= ROUNDS_PER_RUN or workflow.info().is_continue_as_new_suggested():
            self._index.flush()
            await self._audit.flush()
            workflow.continue_as_new(
                request.model_copy(
                    update={
                        "continued": ContinuedTicket(
                            created_at=self._status.created_at,
                            feedback=self._status.feedback,
                            rounds=self._status.review_rounds,
                            slack_message=self._status.slack_message,
                        )
                    }
                )
            )

    async def _await_approval(self, request: TicketRequest, report: SafetyReport) -> TicketOutcome | None:
        """Wait for enough approvals, a rejection or the deadline.

        None means go on: approved, or rejected with a request for a new plan (`gate.replan_requested`).
        """
        if self._approvers is None:  # resolved once per run: later review rounds reuse it
            self._approvers = await self._activity(
                Step(names.ACTIVITY_RESOLVE_APPROVERS, options.RESOLVE_APPROVERS, list[str]),
                ResolveApproversInput(ticket_id=self._status.ticket_id, approvers=request.approval.approvers),
            )
        approvers = self._approvers
        impossible = unmet_quorum(approvers, request.requester, report.required_approvals)
        if impossible:
            return await self._finish(OutcomeStatus.BLOCKED, f"cannot be approved: {impossible}")

        now = workflow.now()
        settings = request.approval
        deadline = now + timedelta(seconds=settings.timeout_seconds)
        reminder_at = deadline - timedelta(seconds=settings.reminder_before_seconds)
        approval = ApprovalRequest(
            request_id=str(workflow.uuid4())[:8],
            plan_hash=report.plan_hash,
            approvers=approvers,
            required_approvals=report.required_approvals,
            requested_at=now,
            deadline=deadline,
            reminder_at=reminder_at if now < reminder_at < deadline else None,
        )
        self._gate = ApprovalGate(request=approval, requester=request.requester)
        self._status.approval = approval
        self._set_stage(Stage.AWAITING_APPROVAL)
        await self._record(
            AuditEventKind.APPROVAL_REQUESTED,
            f"needs {approval.required_approvals} of {', '.join(approvers)} by {deadline:%Y-%m-%d %H:%M} UTC",
            detail={"request_id": approval.request_id, "plan_hash": approval.plan_hash},
        )
        await self._notify(NotifyEvent.STAGE)

        gate = self._gate
        while True:
            self._index.flush()
            await self._audit.flush()
            if gate.verdict is not Verdict.PENDING:
                break
            now = workflow.now()
            if now >= deadline:
                break
            wake_at = approval.reminder_at if approval.reminder_at and now < approval.reminder_at else deadline
            try:
                await workflow.wait_condition(
                    lambda: self._audit.has_queued or gate.verdict is not Verdict.PENDING,
                    timeout=max(wake_at - now, timedelta(seconds=1)),
                )
            except TimeoutError:
                if approval.reminder_at and workflow.now() >= approval.reminder_at and not self._status.reminders_sent:
                    await self._remind(request)

        self._status.approval = None
        ticket_metrics.approval_wait_ended(approval.requested_at, gate.outcome_label)
        if gate.replan_requested:
            return None
        if gate.verdict is Verdict.REJECTED:
            reason = gate.rejection_reason or "no reason given"
            return await self._finish(
                OutcomeStatus.REJECTED, f"rejected by {gate.rejected_by}: {reason}", decided_by=[str(gate.rejected_by)]
            )
        if gate.verdict is Verdict.PENDING:
            return await self._finish(
                OutcomeStatus.EXPIRED, f"no decision before the deadline ({deadline:%Y-%m-%d %H:%M} UTC)"
            )
        return None

    async def _remind(self, request: TicketRequest) -> None:
        self._status.reminders_sent += 1
        await self._record(AuditEventKind.REMINDER_SENT, "reminder: still waiting for approval")
        await self._notify(NotifyEvent.REMINDER)
        if request.approval.escalation_channel:
            await self._notify(NotifyEvent.ESCALATION)

    # ------------------------------------------------------------ helpers

    def _set_stage(self, stage: Stage) -> None:
        self._status.stage = stage
        self._status.updated_at = workflow.now()
        self._index.update(ticket_search.TICKET_STATUS.value_set(self._status.status_label))

    async def _finish(
        self,
        status: OutcomeStatus,
        reason: str,
        execution: ExecutionResult | None = None,
        decided_by: list[str] | None = None,
    ) -> TicketOutcome:
        outcome = TicketOutcome(
            status=status,
            reason=reason,
            execution=execution,
            decided_by=decided_by or [],
            finished_at=workflow.now(),
        )
        self._status.outcome = outcome
        self._status.approval = None
        self._set_stage(Stage.FINISHED)
        ticket_metrics.ticket_finished(status.value, self._status.created_at)
        kind = AuditEventKind.FAILED if status is OutcomeStatus.FAILED else AuditEventKind.FINISHED
        await self._record(kind, f"{status.value}: {reason}", status=status.value)
        await self._notify(NotifyEvent.OUTCOME)
        await self._leave()
        return outcome

    async def _activity(self, step: Step, argument: Any) -> Any:
        """Run one step; a failure that survived the retry policy ends the ticket as failed."""
        if not step.local:
            await self._leave()
        try:
            return await run_step(step, argument)
        except ActivityError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
            raise TicketFailed(f"{step.name} failed: {message}") from error

    async def _record(
        self,
        kind: AuditEventKind,
        summary: str,
        *,
        request: TicketRequest | None = None,
        risk: Risk | None = None,
        status: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self._audit.record(
            RecordEventInput(
                ticket_id=self._status.ticket_id,
                kind=kind,
                summary=summary,
                request=request,
                stage=self._status.stage,
                status=status or self._status.status_label,
                risk=risk,
                detail=detail or {},
            )
        )

    async def _leave(self) -> None:
        """The ticket is about to leave this worker: visibility and the audit log catch up first."""
        self._index.flush()
        await self._audit.flush_before_leaving()

    async def _notify(self, event: NotifyEvent) -> None:
        """Tell the requester (Slack, or the log) where the ticket stands; a failed delivery is audited, never fatal."""
        carried = self._audit.take() if self._carry_audit else []
        if not self._carry_audit:
            await self._audit.flush_before_leaving()
        recorded_delivery = self._carry_audit
        try:
            result: NotifyResult = await run_step(
                Step(names.ACTIVITY_NOTIFY, options.NOTIFY, NotifyResult, local=self._local_notify),
                NotifyInput(event=event, status=self._status, events=carried, record_delivery=self._carry_audit),
            )
        except ActivityError as error:
            result = NotifyResult(delivered=False, error=str(error.cause or error))
            recorded_delivery = False
            if carried:
                workflow.logger.error("audit events %s may not have been recorded", [e.kind.value for e in carried])
        if result.message is not None:
            self._status.slack_message = result.message
        delivery = None if recorded_delivery else result.audit_event(event, self._status)
        if delivery is not None:
            await self._audit.record(delivery)
