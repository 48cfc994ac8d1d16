"""`TicketWorkflow`: one ticket from request to outcome, durably.

Orchestration only: every read or write of the world is an activity, every decision
here is deterministic, so a replay of the history always takes the same path. The run
method reads as the design's steps: context, plan, safety, decide, approval, execute;
the Slack message follows beside it (workflows/delivery.py), never in its way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from core import names
    from core import search_attributes as ticket_search
    from core.approval import NOTHING_PENDING, ApprovalGate, Verdict, parse_decision, unmet_quorum
    from core.judgement import approval_request_id
    from core.masking import mask_status, withheld_rows_changed, withhold_lookups
    from core.models import (
        ApprovalRequest,
        AuditEventKind,
        ContinuedTicket,
        Decision,
        DecisionCheck,
        DecisionRecord,
        ExecutePlanInput,
        ExecutionLookup,
        ExecutionResult,
        FindExecutionInput,
        GatherContextInput,
        NotifyEvent,
        OutcomeStatus,
        Plan,
        PlanRevertInput,
        PlanTicketInput,
        RecordEventInput,
        RequestCheck,
        ResolveApproversInput,
        RevertOf,
        RevertPlan,
        Risk,
        SafetyReport,
        Stage,
        TicketContext,
        TicketOutcome,
        TicketRequest,
        TicketStatus,
        UnjudgedDecision,
        ValidatePlanInput,
        VerifyDecisionInput,
        VerifyRequestInput,
        WaitingApproval,
    )
    from workflows import metrics as ticket_metrics
    from workflows import options
    from workflows.audit_log import AuditLog
    from workflows.delivery import MessageDelivery
    from workflows.search_index import TicketIndex
    from workflows.steps import Step, describe, permanent, run_step

# Review rounds (reject with feedback, plan again) per run before continuing as new.
ROUNDS_PER_RUN = 20
MAX_FEEDBACK_KEPT = 10
# Decisions kept in the status: enough for any real review, bounded against a flood of signals (the status
# goes with every notification, within Temporal's 2 MB: activities/result_size.py).
MAX_DECISIONS_KEPT = 50
# The executor's refusals that say nothing ran and do not fail the ticket: a revert it refuses, rows to judge again.
ANSWERS_NOTHING_RAN = (names.ERROR_REVERT_REFUSED, names.ERROR_APPROVED_ROWS_CHANGED)
# Times the rows a plan touches may change between judgement and execution before the ticket gives up.
MAX_REJUDGED = 3
# A wait for approval that many signals made long continues as new; decisions still being judged get this
# long to finish first (a flood of them may never let all finish).
HANDLERS_BEFORE_CONTINUING = timedelta(seconds=30)
# How a ticket's outcome names a cancel request (`run`).
CANCELLED = "cancelled through Temporal"
# Audit events one run carries to the next at most (a flood while the app DB is down queues one per signal):
# past it, the ignored decisions in the middle are counted in one event instead of listed.
MAX_CARRIED_EVENTS = 200
# Decisions still being checked that one run carries to the next at most (a flood of well-formed ones while the
# check is down): past it, the latest are counted on record as not judged.
MAX_CARRIED_UNJUDGED = 50

# A revert's plan comes from the original's before-images in the target DB, never from the LLM.
PLAN_REVERT = Step(names.ACTIVITY_PLAN_REVERT, options.READ_DURABLE, RevertPlan, local=options.PLAN_REVERT)
GATHER_CONTEXT = Step(names.ACTIVITY_GATHER_CONTEXT, options.READ_DURABLE, TicketContext, local=options.GATHER_CONTEXT)
VALIDATE_PLAN = Step(names.ACTIVITY_VALIDATE_PLAN, options.VALIDATE_PLAN, SafetyReport)
RESOLVE_APPROVERS = Step(names.ACTIVITY_RESOLVE_APPROVERS, options.RESOLVE_APPROVERS, list[str])
EXECUTE_PLAN = Step(names.ACTIVITY_EXECUTE_PLAN, options.EXECUTE_PLAN, ExecutionResult)
# A regular activity, not a local one: handlers run beside the ticket's other coroutines, and a
# local activity's result can reach a live run and a replay at different points among them.
VERIFY_DECISION = Step(names.ACTIVITY_VERIFY_DECISION, options.VERIFY_DECISION, DecisionCheck)


class TicketFailed(Exception):
    """A step failed for good (its retries are spent or retrying cannot help)."""


class TicketCancelled(Exception):
    """A cancel request stopped the ticket before its plan ran: nothing was written."""


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
        # A delivery's events rest on its activity's answer alone, in history: settled.
        self._delivery = MessageDelivery(self._status, lambda event: self._audit.queue(event, settled=True))
        self._rounds_this_run = 0
        self._rows_changed = 0
        self._outcome_told = False
        # The audit batch written beside the approval wait, held so the task is not collected mid-write.
        self._writing_beside: asyncio.Task[bool] | None = None
        self._decisions_received = 0
        self._decisions_judged = 0
        self._unjudged: dict[int, UnjudgedDecision] = {}  # by turn: received, still being checked
        self._judging_carried: list[asyncio.Task[DecisionRecord]] = []  # held so none is collected mid-judgement
        self._cancel_requested = False  # through Temporal: the ticket stops at its next safe point (`run`)
        self._approvers: list[str] | None = None
        # This run continues a wait for approval: `_decide` waits on the restored gate instead of opening one.
        self._resumed: WaitingApproval | None = continued.waiting if continued else None
        if self._resumed is not None:
            self._resume_wait(self._resumed)
        # Started with the ticket search attributes, so the namespace has them and upserts are safe.
        self._index = TicketIndex(
            enabled=workflow.info().typed_search_attributes.get(ticket_search.TICKET_REQUESTER) is not None
        )

    # ------------------------------------------------------------ handlers

    @workflow.query(name=names.QUERY_STATUS)
    def status(self) -> TicketStatus:
        return mask_status(self._status)

    # A decision still being judged when the run continues as new goes with it (`_carried_decisions`); the run
    # ends only once every decision is judged (`_all_judged`).
    @workflow.signal(name=names.SIGNAL_APPROVE, unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def approve(self, payload: Any) -> None:
        await self._judge(payload, approve=True)

    @workflow.signal(name=names.SIGNAL_REJECT, unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def reject(self, payload: Any) -> None:
        await self._judge(payload, approve=False)

    async def _judge(self, payload: Any, approve: bool, carried: UnjudgedDecision | None = None) -> DecisionRecord:
        """Every decision, from any client, is judged here and recorded: counted, or ignored and why.

        Decisions come as signals only: a signal is an event in the history, so a replay meets it
        exactly where the live run did (an update's acceptance, racing an activity's completion,
        has replayed in another order: sdk-python #673). The payload is taken loosely and parsed
        here, so a malformed one is recorded, not dropped. Clients read the verdict from `status`.
        `carried`: a decision the last run received and had not judged when it continued as new.
        """
        received_at = carried.received_at if carried else workflow.now()
        turn = self._decisions_received
        self._decisions_received += 1
        self._unjudged[turn] = UnjudgedDecision(payload=payload, approve=approve, received_at=received_at)
        decision, problem = parse_decision(payload, approve)
        check = DecisionCheck(problem=problem)
        if problem is None:
            check = await self._check(decision)
        # Proofs are checked side by side; decisions are judged in the order they arrived.
        await workflow.wait_condition(lambda: self._decisions_judged == turn)
        self._decisions_judged += 1
        del self._unjudged[turn]
        if check.problem is not None:
            record = DecisionRecord(decision=decision, received_at=received_at, accepted=False, reason=check.problem)
        elif self._gate is None:
            record = DecisionRecord(decision=decision, received_at=received_at, accepted=False, reason=NOTHING_PENDING)
        else:
            record = self._gate.apply(decision, received_at, configured_approver=check.configured_approver)
        self._status.decisions = [*self._status.decisions, record][-MAX_DECISIONS_KEPT:]
        if record.accepted and self._gate is not None:
            self._status.approved_by = list(self._gate.approved_by)
            self._delivery.want()  # the message shows who has approved and how many more are needed
        ticket_metrics.decision_received(record.accepted)
        verb = "approved" if decision.approve else "rejected"
        self._audit.queue(
            RecordEventInput(
                ticket_id=self._status.ticket_id,
                kind=AuditEventKind.DECISION_ACCEPTED if record.accepted else AuditEventKind.DECISION_IGNORED,
                actor=decision.decider,
                source=decision.source.value,
                summary=f"{decision.decider} {verb}" + ("" if record.accepted else f" (ignored: {record.reason})"),
                detail={
                    "request_id": decision.request_id,
                    "plan_hash": decision.plan_hash,
                    "comment": decision.comment,
                },
            )
        )
        workflow.logger.info("decision from %s: %s", decision.decider, "counted" if record.accepted else record.reason)
        return record

    async def _check(self, decision: Decision) -> DecisionCheck:
        """Whether the decision proves who made it, and whether APPROVERS names them now: the worker
        holds the key and the list, so it checks."""
        try:
            check: DecisionCheck = await run_step(
                VERIFY_DECISION,
                VerifyDecisionInput(ticket_id=self._status.ticket_id, decision=decision),
            )
        except FailureError as error:
            return DecisionCheck(problem=f"could not verify: {describe(error)}")
        return check

    # ------------------------------------------------------------ the ticket's path

    @workflow.run
    async def run(self, request: TicketRequest) -> TicketOutcome:
        """The ticket, to its outcome whatever a cancel request through Temporal finds.

        Temporal cancels this coroutine only: the ticket goes on beside it, shielded, and stops at its next
        safe point. A step that writes nothing stops now, a wait for approval closes (its approvals spent),
        a plan not yet running never runs, a running plan finishes; the outcome goes on record and to the
        channel either way. Raised into the ticket's own awaits, the cancellation ended a ticket whose plan
        had run as CANCELED in Temporal, its channel never told (red team 70).
        """
        ticket = asyncio.create_task(self._see_through(request))
        while True:
            try:
                return await asyncio.shield(ticket)
            except asyncio.CancelledError:
                if ticket.done():
                    raise
                if not self._cancel_requested:
                    workflow.logger.info("cancel requested through Temporal: the ticket stops at its next safe point")
                self._cancel_requested = True

    async def _see_through(self, request: TicketRequest) -> TicketOutcome:
        workflow_id = workflow.info().workflow_id
        if not names.is_ticket_workflow_id(workflow_id):
            # Before anything is written or posted: its record would be another ticket's.
            raise ApplicationError(
                f"{workflow_id!r} is not a ticket's workflow id (ticket-<id>); start tickets with TicketService",
                type=names.ERROR_NOT_A_TICKET,
                non_retryable=True,
            )
        await self._admit(request)
        delivering = asyncio.create_task(self._delivery.run())
        carried = self._resumed.unjudged if self._resumed else []
        self._judging_carried = [asyncio.create_task(self._judge(c.payload, c.approve, c)) for c in carried]
        if request.continued is None:
            # Settled: it rests on the request alone, and comes first.
            submitted = f"submitted via {request.source.value}"
            self._record(AuditEventKind.SUBMITTED, submitted, request=request, settled=True)
            # On record (and listed) before anything else: a context read on a hanging target DB holds
            # the first workflow task for seconds, and the task then completes early, its delivery with it.
            await self._audit.flush()
        self._delivery.want()
        try:
            outcome = await self._process(self._status.request)
        except TicketCancelled as cancelled:
            outcome = self._finish(OutcomeStatus.CANCELLED, str(cancelled))
        except TicketFailed as failure:
            outcome = self._finish(OutcomeStatus.FAILED, str(failure))
        await self._settle_outcome()
        if request.reverts is not None and outcome.status is OutcomeStatus.DONE:
            await self._note_on_original(request.reverts)
        await self._close()
        delivering.cancel()
        return outcome

    async def _admit(self, request: TicketRequest) -> None:
        """Refuse, before anything is written or posted, a request no front door signed for this ticket.

        Whoever starts a workflow writes its request, requester included: a raw start naming someone
        else as requester let an approver approve their own change (red team 17). The first run's
        request is checked; a continuation carries it from there, and only the ticket's run makes one.
        """
        info = workflow.info()
        if info.cron_schedule:
            # A cron run starts with the last run's id as if continued: a client's forged `continued` state
            # would pass as the ticket's own (red team 40). Tickets never run on a schedule.
            raise ApplicationError(
                "a ticket's workflow never runs on a cron schedule; start tickets with TicketService",
                type=names.ERROR_UNPROVEN_REQUEST,
                non_retryable=True,
            )
        if request.continued is not None:
            if info.continued_run_id is None:
                raise ApplicationError(
                    "a continued ticket's run is started by its last run, not by a client",
                    type=names.ERROR_UNPROVEN_REQUEST,
                    non_retryable=True,
                )
            return
        try:
            # Local only: a durable retry goes through the task queue, where a poller of any namespace
            # client's could answer "no problem" (red team 20).
            check: RequestCheck = await workflow.execute_local_activity(
                names.ACTIVITY_VERIFY_REQUEST,
                VerifyRequestInput(workflow_id=info.workflow_id, request=request, started_at=info.workflow_start_time),
                result_type=RequestCheck,
                start_to_close_timeout=options.VERIFY_REQUEST.start_to_close,
                retry_policy=options.VERIFY_REQUEST.retry,
            )
        except FailureError as error:
            check = RequestCheck(problem=f"could not verify: {describe(error)}")
        if check.problem is not None:
            raise ApplicationError(
                f"the request was not signed by a front door for this ticket ({check.problem}); "
                "start tickets with TicketService holding DECISION_SIGNING_KEY",
                type=names.ERROR_UNPROVEN_REQUEST,
                non_retryable=True,
            )

    async def _process(self, request: TicketRequest) -> TicketOutcome:
        if request.reverts is not None:
            return await self._process_revert(request, request.reverts)
        context: TicketContext | None = None
        plan: Plan | None = self._resumed.plan if self._resumed else None
        report: SafetyReport | None = self._resumed.report if self._resumed else None
        while True:
            if plan is None:
                context = context or await self._gather_context(request)
                plan, report = await self._plan_and_validate(request, context)
            elif report is None:  # its rows changed after approval: judged again, and asked again
                report = await self._validate(plan)
            decision = await self._decide(request, plan, report)
            if isinstance(decision, TicketOutcome):
                return decision
            if decision is None:  # a reviewer asked for a new plan
                plan = report = None
                continue
            executed = await self._execute(plan, report, approvals=decision)
            if executed is not None:
                return executed
            report = None

    async def _gather_context(self, request: TicketRequest) -> TicketContext:
        self._set_stage(Stage.GATHERING_CONTEXT)
        context: TicketContext = await self._step(
            GATHER_CONTEXT, GatherContextInput(ticket_id=self._status.ticket_id, request=request)
        )
        self._status.context_summary = context.summary()
        self._record(
            AuditEventKind.CONTEXT_GATHERED, self._status.context_summary, detail={"redacted": context.redacted}
        )
        return context

    async def _process_revert(self, request: TicketRequest, reverts: RevertOf) -> TicketOutcome:
        """Undo an executed ticket: the inverse plan from its before-images, then the same judge and approvals.

        A reviewer's "plan again" builds the same plan again: it is a function of the images alone.
        """
        original = names.ticket_label(names.short_id_from(reverts.workflow_id))
        self._status.context_summary = f"reverts {original}" + (
            ", overwriting later changes" if reverts.include_conflicts else ""
        )
        resumed = self._resumed
        while True:
            if resumed is not None:
                plan: Plan = resumed.plan
            else:
                self._set_stage(Stage.PLANNING)
                planned: RevertPlan = await self._step(
                    PLAN_REVERT, PlanRevertInput(ticket_id=self._status.ticket_id, reverts=reverts)
                )
                if planned.plan is None:
                    self._record(AuditEventKind.DECIDED, f"cannot revert {original}")
                    return self._finish(OutcomeStatus.BLOCKED, planned.refusal)
                plan = planned.plan
                self._status.plan = plan
                self._record(
                    AuditEventKind.PLANNED,
                    f"{len(plan.operations)} operation(s) by {plan.planner}: {plan.summary}",
                    detail={
                        "planner": plan.planner,
                        "operations": len(plan.operations),
                        "reverts": reverts.workflow_id,
                    },
                )
            while True:
                report = resumed.report if resumed is not None else await self._validate(plan)
                resumed = None
                decision = await self._decide(request, plan, report)
                if isinstance(decision, TicketOutcome):
                    return decision
                if decision is None:
                    break
                executed = await self._execute(plan, report, approvals=decision)
                if executed is not None:
                    return executed

    async def _note_on_original(self, reverts: RevertOf) -> None:
        """The ticket this one undid says so on its own record (`agent-ticket show`, the dashboard)."""
        label = names.ticket_label(self._status.ticket_id)
        await self._audit.note_elsewhere(
            RecordEventInput(
                ticket_id=names.short_id_from(reverts.workflow_id),
                kind=AuditEventKind.REVERTED,
                summary=f"reverted by {label}",
                detail={"reverted_by": self._status.workflow_id},
            )
        )

    async def _decide(
        self, request: TicketRequest, plan: Plan, report: SafetyReport
    ) -> list[Decision] | TicketOutcome | None:
        """The plan's approvals ([] when it needs none), the outcome that ends the ticket, or None to plan again.

        Called in the workflow task the plan's validation answered in: what it decides rests on that answer alone.
        """
        if self._resumed is not None and self._gate is not None:  # the last run was waiting on this gate
            self._resumed = None
            return await self._verdict_of(self._gate, request)
        if report.risk is Risk.BLOCKED:
            # Nobody will approve it, so what its private lookups matched stays withheld for good: the
            # words of a finding such as "reads 102 rows" counted them (red team).
            shown = withhold_lookups(report, plan)
            reasons = "; ".join(f.message for f in shown.findings if f.risk is Risk.BLOCKED)
            self._record(AuditEventKind.DECIDED, "blocked by safety policy", settled=True)
            return self._finish(OutcomeStatus.BLOCKED, f"blocked by safety policy: {reasons}", settled=True)
        if report.required_approvals == 0:
            self._record(AuditEventKind.DECIDED, f"risk {report.risk.value}: runs without approval", settled=True)
            return []
        needs = f"risk {report.risk.value} needs {report.required_approvals} approval(s)"
        self._record(AuditEventKind.DECIDED, needs, settled=True)
        gate = await self._open_approval(request, report)
        if isinstance(gate, TicketOutcome):
            return gate
        return await self._verdict_of(gate, request)

    async def _verdict_of(self, gate: ApprovalGate, request: TicketRequest) -> list[Decision] | TicketOutcome | None:
        await self._wait_for_verdict(gate, request)
        checked = True  # the ledger says the plan did not run (or it is about to run)
        if gate.verdict is not Verdict.APPROVED:
            # Closed without a run: the approvals it got, and any signed later on an old button, must run
            # nothing once this ticket has ended or moved on (red team 62). A decision from here on finds
            # nothing pending, so none counts after the deadline while the ledger is asked.
            self._gate = None
            lookup = await self._spend_closed_round(gate.request.plan_hash, gate.request.request_id)
            if lookup is not None and lookup.result is not None:
                self._status.approval = None
                return self._ran_before(lookup.result, gate.approved_by)
            checked = lookup is not None
        outcome = self._close_approval(gate, checked)
        if outcome is not None:
            return outcome
        if gate.replan_requested:
            await self._start_new_round(request, gate)
            return None
        return list(gate.approvals)

    async def _plan_and_validate(self, request: TicketRequest, context: TicketContext) -> tuple[Plan, SafetyReport]:
        ticket_id = self._status.ticket_id
        self._set_stage(Stage.PLANNING)
        plan: Plan = await self._step(
            Step(names.ACTIVITY_PLAN_TICKET, options.PLAN_TICKET, Plan, task_queue=f"{workflow.info().task_queue}-llm"),
            PlanTicketInput(ticket_id=ticket_id, request=request, context=context, feedback=self._status.feedback),
        )
        self._status.plan = plan
        self._record(
            AuditEventKind.PLANNED,
            f"{len(plan.operations)} operation(s) by {plan.planner}: {plan.summary}",
            detail={"planner": plan.planner, "operations": len(plan.operations)},
        )

        return plan, await self._validate(plan)

    async def _validate(self, plan: Plan) -> SafetyReport:
        self._set_stage(Stage.VALIDATING)
        report: SafetyReport = await self._step(
            VALIDATE_PLAN,
            ValidatePlanInput(
                ticket_id=self._status.ticket_id,
                plan=plan,
                request=self._status.request,
                first_run_id=workflow.info().first_execution_run_id,
            ),
        )
        self._status.report = report
        self._status.plan_hash = report.plan_hash
        self._index.update(ticket_search.TICKET_RISK.value_set(report.risk.value))
        if self._status.review_rounds == 0:
            ticket_metrics.plan_ready(self._status.created_at)
        shown = withhold_lookups(report, plan)  # the audit trail is shown too: no count of a private lookup
        self._record(
            AuditEventKind.VALIDATED,
            f"risk {report.risk.value}, {shown.rows_affected} row(s) affected, {len(report.findings)} finding(s)",
            risk=report.risk,
            detail={"plan_hash": report.plan_hash, "findings": [f.rule for f in report.findings]},
            settled=True,  # the validation's answer, in history
        )
        return report

    # ------------------------------------------------------------ approval

    async def _open_approval(self, request: TicketRequest, report: SafetyReport) -> ApprovalGate | TicketOutcome:
        """Post the plan for approval: the gate that will judge decisions, or the outcome if none can pass it."""
        if self._approvers is None:  # resolved once per run: later review rounds reuse it
            self._approvers = await self._step(
                RESOLVE_APPROVERS,
                ResolveApproversInput(ticket_id=self._status.ticket_id, approvers=request.approval.approvers),
            )
        approvers = self._approvers
        # A revert's approvers exclude whoever asked for the change it undoes.
        excluded = [request.requester, *(report.revert.excluded if report.revert else [])]
        impossible = unmet_quorum(approvers, excluded, report.required_approvals)
        if impossible:
            return self._finish(OutcomeStatus.BLOCKED, f"cannot be approved: {impossible}")

        now = workflow.now()
        settings = request.approval
        deadline = now + timedelta(seconds=settings.timeout_seconds)
        reminder_at = deadline - timedelta(seconds=settings.reminder_before_seconds)
        approval = ApprovalRequest(
            # Drawn from the signed judgement, so approvals of it count for no other (core/judgement.py).
            request_id=approval_request_id(str(workflow.uuid4())[:8], report.judgement),
            plan_hash=report.plan_hash,
            approvers=approvers,
            required_approvals=report.required_approvals,
            requested_at=now,
            deadline=deadline,
            reminder_at=reminder_at if now < reminder_at < deadline else None,
            excluded=[person for person in dict.fromkeys(excluded) if person != request.requester],
        )
        self._gate = ApprovalGate(request=approval, requester=request.requester)
        self._status.approval = approval
        self._status.approved_by = []
        self._set_stage(Stage.AWAITING_APPROVAL)
        self._record(
            AuditEventKind.APPROVAL_REQUESTED,
            f"needs {approval.required_approvals} of {', '.join(approvers)} by {deadline:%Y-%m-%d %H:%M} UTC",
            detail={"request_id": approval.request_id, "plan_hash": approval.plan_hash},
        )
        self._delivery.want()
        return self._gate

    async def _wait_for_verdict(self, gate: ApprovalGate, request: TicketRequest) -> None:
        """Wait, using no CPU, for enough approvals, a rejection or the deadline; remind on the way."""
        approval = gate.request
        self._index.flush()  # the ticket rests here: visibility lists it as awaiting approval, with its risk
        # The decisions' events are written beside the wait, so a verdict or the deadline is acted on
        # (and a rejection told) while the app DB is down; `AuditLog` keeps the batches in order.
        while True:
            if self._audit.has_queued and not self._audit.writing:
                self._writing_beside = asyncio.create_task(self._leave())
            # Every decision that came is judged before a timer is acted on. A task lost after writing a
            # decision's verdict is run again with the deadline's timer fired beside the decision's check,
            # and would otherwise act on the timer first: "alice approved" on record, then "expired" (red
            # team 68). A decision that came before the deadline counts, however long its check took. A flood
            # of decisions that keeps some unjudged does not hold off continuing as new (red team 28).
            await workflow.wait_condition(
                lambda: (
                    self._decisions_judged == self._decisions_received or workflow.info().is_continue_as_new_suggested()
                )
            )
            if gate.verdict is not Verdict.PENDING or self._cancel_requested:
                return
            now = workflow.now()
            if now >= approval.deadline:
                return
            if approval.reminder_at and now >= approval.reminder_at and not self._status.reminders_sent:
                self._remind(request)  # due, however the wait woke (a decision, or a run continued after it)
            if workflow.info().is_continue_as_new_suggested():
                await self._continue_waiting(request, gate)
                continue
            wake_at = approval.reminder_at if approval.reminder_at and now < approval.reminder_at else approval.deadline
            with contextlib.suppress(TimeoutError):  # the deadline or the reminder: the loop's checks act on them
                await workflow.wait_condition(
                    lambda: (
                        (self._audit.has_queued and not self._audit.writing)
                        or gate.verdict is not Verdict.PENDING
                        or self._cancel_requested
                        or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=max(wake_at - now, timedelta(seconds=1)),
                )

    async def _continue_waiting(self, request: TicketRequest, gate: ApprovalGate) -> None:
        """Go on waiting in a fresh run: the same gate, deadline and approvals counted so far.

        Each decision adds to the history, and a flood of forged ones would take a waiting ticket to
        Temporal's limit, where it ends, never told (red team 28). Returns only if a decision judged
        meanwhile settled the gate.
        """
        # Not waiting for the audit log: with the app DB down its write waits for days while the flood goes
        # on (red team 40). What it has not written goes with the run.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(workflow.all_handlers_finished, timeout=HANDLERS_BEFORE_CONTINUING)
        if gate.verdict is not Verdict.PENDING or self._cancel_requested:  # a cancel request is not carried
            return
        status = self._status
        assert status.plan is not None and status.report is not None  # judged before approval was asked
        waiting = WaitingApproval(
            plan=status.plan,
            report=status.report,
            approval=gate.request,
            approvals=list(gate.approvals),
            decisions=status.decisions,
            reminders_sent=status.reminders_sent,
            context_summary=status.context_summary,
            rejudged_because=status.rejudged_because,
            rows_changed=self._rows_changed,
            unjudged=self._carried_decisions(),  # first: it may record a count the events then carry
            unrecorded=[event.model_dump(mode="json") for event in self._carried_events()],
        )
        self._index.flush()
        workflow.continue_as_new(request.model_copy(update={"continued": self._continued(waiting)}))

    def _carried_decisions(self) -> list[UnjudgedDecision]:
        """Decisions received and not judged yet (their checks still running), in the order they came, within
        `MAX_CARRIED_UNJUDGED`: the next run judges them. Continuing without them dropped an approval still being
        checked without a trace (red team 72)."""
        unjudged = [self._unjudged[turn] for turn in sorted(self._unjudged)]
        if len(unjudged) > MAX_CARRIED_UNJUDGED:
            left = len(unjudged) - MAX_CARRIED_UNJUDGED
            self._record(
                AuditEventKind.DECISION_IGNORED,
                f"{left} more decisions not judged before the ticket continued as new (their checks were still "
                "running): not counted",
            )
        return unjudged[:MAX_CARRIED_UNJUDGED]

    def _carried_events(self) -> list[RecordEventInput]:
        """The audit events not yet written, within `MAX_CARRIED_EVENTS`: the batch in flight whole, then the
        queue, whose oldest ignored decisions past the bound are counted in one event instead of listed. The
        batch in flight may have landed: counted as well, its decisions were told twice (red team 72)."""
        in_flight, queued = self._audit.in_flight, self._audit.queued
        room = MAX_CARRIED_EVENTS - len(in_flight)
        if len(queued) <= room:
            return [*in_flight, *queued]
        ignored = [index for index, event in enumerate(queued) if event.kind is AuditEventKind.DECISION_IGNORED]
        dropped = set(ignored[: len(queued) - room + 1])
        self._record(AuditEventKind.DECISION_IGNORED, f"{len(dropped)} more decisions ignored, not listed one by one")
        return [*in_flight, *(event for index, event in enumerate(self._audit.queued) if index not in dropped)]

    def _continued(self, waiting: WaitingApproval | None = None) -> ContinuedTicket:
        """What the next run carries; a post still owed is not carried over (it shows its state in the same message)."""
        return ContinuedTicket(
            created_at=self._status.created_at,
            feedback=self._status.feedback,
            rounds=self._status.review_rounds,
            slack_message=self._status.slack_message,
            waiting=waiting,
        )

    def _resume_wait(self, waiting: WaitingApproval) -> None:
        """Stand where the last run stood when it continued as new: waiting on the same approval request."""
        status = self._status
        status.plan, status.report, status.plan_hash = waiting.plan, waiting.report, waiting.report.plan_hash
        status.approval = waiting.approval
        status.approved_by = [decision.decider for decision in waiting.approvals]
        status.decisions = list(waiting.decisions)
        status.reminders_sent = waiting.reminders_sent
        status.context_summary = waiting.context_summary
        status.rejudged_because = waiting.rejudged_because
        status.stage = Stage.AWAITING_APPROVAL
        self._rows_changed = waiting.rows_changed
        self._audit.adopt([RecordEventInput.model_validate(event) for event in waiting.unrecorded])
        self._gate = ApprovalGate(
            request=waiting.approval,
            requester=status.request.requester,
            approved_by=list(status.approved_by),
            approvals=list(waiting.approvals),
        )

    def _close_approval(self, gate: ApprovalGate, checked: bool) -> TicketOutcome | None:
        """The outcome the verdict means, or None to go on (approved, or a new plan requested); `checked`: the
        ledger said the plan did not run."""
        self._status.approval = None
        ticket_metrics.approval_wait_ended(gate.request.requested_at, gate.outcome_label)
        if self._cancel_requested and (gate.verdict is Verdict.PENDING or gate.replan_requested):
            why = f"{CANCELLED} while it waited for approval" + (": nothing was written" if checked else "")
            return self._finish(OutcomeStatus.CANCELLED, why)
        if gate.replan_requested:
            return None
        if gate.verdict is Verdict.REJECTED:
            reason = gate.rejection_reason or "no reason given"
            return self._finish(
                OutcomeStatus.REJECTED, f"rejected by {gate.rejected_by}: {reason}", decided_by=[str(gate.rejected_by)]
            )
        if gate.verdict is Verdict.PENDING:
            return self._finish(
                OutcomeStatus.EXPIRED, f"no decision before the deadline ({gate.request.deadline:%Y-%m-%d %H:%M} UTC)"
            )
        return None

    def _remind(self, request: TicketRequest) -> None:
        self._status.reminders_sent += 1
        self._record(AuditEventKind.REMINDER_SENT, "reminder: still waiting for approval")
        posts = [NotifyEvent.REMINDER]
        if request.approval.escalation_channel:
            posts.append(NotifyEvent.ESCALATION)
        self._delivery.want(*posts)

    async def _start_new_round(self, request: TicketRequest, gate: ApprovalGate) -> None:
        """A reviewer rejected with feedback and asked for a new plan: plan again with it.

        Each round adds to the history, so a long conversation continues as new
        (same workflow id, fresh history) before Temporal's limits come near.
        """
        feedback = gate.rejection_reason.strip()
        self._status.feedback = [*self._status.feedback, feedback][-MAX_FEEDBACK_KEPT:]
        self._status.review_rounds += 1
        self._rounds_this_run += 1
        self._gate = None
        self._record(
            AuditEventKind.REPLAN_REQUESTED,
            f"new plan requested: {feedback}",
            detail={"round": self._status.review_rounds},
        )
        if self._rounds_this_run >= ROUNDS_PER_RUN or workflow.info().is_continue_as_new_suggested():
            await self._write_until_quiet()
            self._stop_if_cancelled("before it planned again")  # a cancel request is not carried to the next run
            self._index.flush()
            workflow.continue_as_new(request.model_copy(update={"continued": self._continued()}))

    # ------------------------------------------------------------ execution and outcome

    async def _execute(self, plan: Plan, report: SafetyReport, approvals: list[Decision]) -> TicketOutcome | None:
        """Run the plan once; None when the rows it would touch are not the ones judged (nothing written).

        The executor checks the judgement and the approvals again itself: it believes no activity's answer.
        """
        decided_by = [decision.decider for decision in approvals]
        # What the run claims, so that "nothing ran" is never said beside a run still open: the approval
        # request, else a key of this execution's own (a new one for each plan the ticket runs).
        claim = approvals[0].request_id if approvals else f"run/{workflow.uuid4().hex[:16]}"
        self._set_stage(Stage.EXECUTING)
        if decided_by:
            self._delivery.want()  # the decision is in: the approval buttons come off
        # A plan never runs before the steps that led to it are on record. A cancel request that comes while
        # that write waits for the app DB ends the ticket now, told at once (`_settle_outcome`): its plan
        # will not run, and the write goes on beside it.
        self._writing_beside = writing = asyncio.create_task(self._leave())
        await workflow.wait_condition(lambda: writing.done() or self._cancel_requested)
        if self._cancel_requested:
            # Its claim is spent, so the approvals run nothing once this ticket has ended (red team 62); and
            # the ledger has the last word: a reset run of this ticket may stand before a plan that ran (red
            # team 71: "cancelled … nothing was written" beside the write).
            lookup = await self._spend_closed_round(report.plan_hash, claim)
            if lookup is not None and lookup.result is not None:
                return self._ran_before(lookup.result, decided_by)
            self._stop_if_cancelled("before its plan ran" + (": nothing was written" if lookup else ""))
        if not writing.result():
            raise TicketFailed("the audit log refused this ticket's events, so its plan was not run")
        try:
            result: ExecutionResult = await run_step(
                EXECUTE_PLAN,
                ExecutePlanInput(
                    ticket_id=self._status.ticket_id,
                    workflow_id=self._status.workflow_id,
                    plan=plan,
                    plan_hash=report.plan_hash,
                    approved_rows=[impact.rows_affected for impact in report.impacts],
                    approved_row_keys=report.approved_row_keys,
                    approved_versions=[impact.rows_version for impact in report.impacts],
                    schema_digest=report.schema_digest,
                    requester=self._status.request.requester,
                    approved_by=decided_by,
                    reverts=reverts.workflow_id if (reverts := self._status.request.reverts) else "",
                    judgement=report.judgement,
                    approvals=approvals,
                    run_key="" if approvals else claim,
                ),
            )
        except FailureError as error:
            settled = False  # the ledger's word, read locally in this task
            cause = permanent(error)
            if cause is None or cause.type not in ANSWERS_NOTHING_RAN:
                failed = (
                    f"{names.ACTIVITY_EXECUTE_PLAN} failed: {describe(error, EXECUTE_PLAN.options.schedule_to_close)}"
                )
                result = await self._ran_after_all(report.plan_hash, failed, claim, certain=cause is not None)
            else:
                # That word may be a rogue poller's: the ledger says whether it ran, and its approvals are
                # spent if not, so they run nothing once this ticket has asked again or ended (red team 62).
                found = await self._said_nothing_ran(report.plan_hash, claim, cause)
                if found is None:
                    return self._not_run(cause, report, plan, decided_by)
                result = found
        else:
            settled = True  # the execution's answer, in history: nothing else decides what follows
        return self._executed(result, decided_by, settled=settled)

    def _executed(self, result: ExecutionResult, decided_by: list[str], *, settled: bool = False) -> TicketOutcome:
        self._record(
            AuditEventKind.EXECUTED,
            f"{result.rows_changed} row(s) changed" + (" (already applied)" if result.replayed else ""),
            detail={"plan_hash": result.plan_hash, "replayed": result.replayed},
            settled=settled,
        )
        summary = f"executed: {result.rows_changed} row(s) changed"
        return self._finish(OutcomeStatus.DONE, summary, execution=result, decided_by=decided_by, settled=settled)

    def _ran_before(self, result: ExecutionResult, decided_by: list[str]) -> TicketOutcome:
        """Done after all: the ledger shows this ticket's plan ran before this run stood where it is, which only a
        reset of the ticket to a point before its run does (red team 71: a reset run told "rejected" or
        "cancelled … nothing was written" beside the write). What it ran is what the ticket says."""
        workflow.logger.warning("the ledger shows plan %s ran before this run got to it (a reset?)", result.plan_hash)
        return self._executed(result.model_copy(update={"replayed": True}), decided_by)

    def _not_run(
        self, cause: ApplicationError, report: SafetyReport, plan: Plan, decided_by: list[str]
    ) -> TicketOutcome | None:
        """The executor ran nothing and says why: a revert it refuses is blocked; rows changed since
        approval (or approvals spent or aged) are judged and asked about again, so None."""
        if cause.type == names.ERROR_REVERT_REFUSED:
            return self._finish(OutcomeStatus.BLOCKED, cause.message, decided_by=decided_by)
        self._rows_changed += 1
        why = withheld_rows_changed(cause.message, report, plan)
        if self._rows_changed > MAX_REJUDGED:
            raise TicketFailed(f"the rows kept changing under the plan: {why}") from cause
        self._status.rejudged_because = why
        self._record(AuditEventKind.ROWS_CHANGED, f"nothing written, judged again: {why}")
        return None

    async def _ran_after_all(self, plan_hash: str, failed: str, claim: str, *, certain: bool) -> ExecutionResult:
        """The plan's stored result if the ledger shows it ran although its step failed; else `TicketFailed`.

        A step can fail after its transaction committed: a worker gone past the step's bound, a result it
        could not report. The ledger row commits with the writes, so it says which (red team 25). `certain`:
        the executor itself said it wrote nothing, so the message needs no word from the ledger. Found not
        to have run, its approvals are spent: the ticket is told so, and they must run nothing later (red
        team 60: an execution answered with a false failure by a rogue poller, then run on them).
        """
        try:
            lookup = await self._find_execution(plan_hash, claim)
        except FailureError as error:
            raise TicketFailed(
                f"{failed}; whether it ran could not be checked ({describe(error)}): "
                "its ledger row says, once the target DB answers"
            ) from error
        if lookup.result is not None:
            return lookup.result
        raise TicketFailed(failed if certain else f"{failed}; its ledger holds no run of it: nothing was written")

    async def _said_nothing_ran(self, plan_hash: str, claim: str, cause: ApplicationError) -> ExecutionResult | None:
        """The plan's stored result if it ran after all, else None with its approvals spent; `TicketFailed` if
        the ledger cannot tell now: a run may still be committing (red team 64), so "nothing ran" is not said."""
        try:
            return (await self._find_execution(plan_hash, claim, options.FIND_EXECUTION_PATIENTLY)).result
        except FailureError as error:
            raise TicketFailed(
                f"{names.ACTIVITY_EXECUTE_PLAN} said nothing ran ({cause.message}), but whether it ran could not be "
                f"checked ({describe(error)}): its ledger row says, once the target DB answers"
            ) from error

    async def _spend_closed_round(self, plan_hash: str, claim: str) -> ExecutionLookup | None:
        """Spend the claim of a plan this run closes without running; the ledger's word on the plan, None if it
        could not be asked. If the target DB cannot take it now, the round closes all the same (its approvals
        then only age: `core.judgement.APPROVALS_GOOD_FOR`)."""
        try:
            return await self._find_execution(plan_hash, claim)
        except FailureError as error:
            workflow.logger.warning("the ledger could not be asked about plan %s: %s", plan_hash, describe(error))
            return None

    async def _find_execution(
        self, plan_hash: str, claim: str, asked: options.ActivityOptions = options.FIND_EXECUTION
    ) -> ExecutionLookup:
        """The ledger's word on the plan; not run, its claim (the approval request, or the run key) is spent
        (a local activity: only this ticket's own worker answers it)."""
        lookup: ExecutionLookup = await workflow.execute_local_activity(
            names.ACTIVITY_FIND_EXECUTION,
            FindExecutionInput(plan_hash=plan_hash, claim=claim),
            result_type=ExecutionLookup,
            start_to_close_timeout=asked.start_to_close,
            schedule_to_close_timeout=asked.schedule_to_close,
            retry_policy=asked.retry,
        )
        return lookup

    def _finish(
        self,
        status: OutcomeStatus,
        reason: str,
        execution: ExecutionResult | None = None,
        decided_by: list[str] | None = None,
        *,
        settled: bool = False,
    ) -> TicketOutcome:
        """Settle the outcome: it is final here, and the message about it is owed from now on."""
        outcome = TicketOutcome(
            status=status, reason=reason, execution=execution, decided_by=decided_by or [], finished_at=workflow.now()
        )
        self._status.outcome = outcome
        self._status.approval = None
        self._gate = None
        self._set_stage(Stage.FINISHED)
        self._delivery.owe_and_hold()  # told once on record (`_settle_outcome`)
        ticket_metrics.ticket_finished(status.value, self._status.created_at)
        kind = AuditEventKind.FAILED if status is OutcomeStatus.FAILED else AuditEventKind.FINISHED
        self._record(kind, f"{status.value}: {reason}", status=status.value, settled=settled)
        return outcome

    async def _settle_outcome(self) -> None:
        """The outcome goes on record, then to the channel; an app DB that is down does not hold the telling.

        Told in the same workflow task as the audit write, the delivery's status query met the task that
        records the write still running and waited about a second for it (bench/notes.md, item 18).
        """
        self._index.flush()
        await self._leave(before_durable=self._tell_outcome)
        await self._tell_outcome()

    async def _tell_outcome(self) -> None:
        if not self._outcome_told:
            self._outcome_told = True
            self._delivery.release(NotifyEvent.OUTCOME)

    async def _close(self) -> None:
        """Before the run ends: events queued since the outcome go on record; then owed messages and decisions end."""
        await self._leave()
        await self._write_until_quiet(lambda: not self._delivery.owed)

    async def _write_until_quiet(self, also: Callable[[], bool] = lambda: True) -> None:
        """Write what the handlers queue until none is running, nothing is queued and `also()` holds.

        The run may end or continue as new after this, in the same workflow task: a decision that came
        in while the last batch was being written is on record first, never left behind with the run.
        """
        while True:
            await workflow.wait_condition(lambda: self._audit.has_queued or (also() and self._all_judged()))
            await self._leave()
            if also() and self._all_judged() and not self._audit.has_queued:
                return

    def _all_judged(self) -> bool:
        """No handler runs, and no decision carried from the last run waits for its check."""
        return workflow.all_handlers_finished() and not self._unjudged

    # ------------------------------------------------------------ helpers

    def _set_stage(self, stage: Stage) -> None:
        self._status.stage = stage
        self._status.updated_at = workflow.now()
        self._index.update(ticket_search.TICKET_STATUS.value_set(self._status.status_label))

    async def _step(self, step: Step, argument: Any) -> Any:
        """Run one step, which writes nothing: a failure that survived every retry policy ends the ticket as
        failed, and a cancel request as cancelled at once (the step is cancelled: a plan waiting on an LLM
        that is down does not hold a cancelled ticket for half an hour)."""
        # What is queued stays queued: the record catches up before a plan runs, where the ticket rests, and
        # at its end (`_leave`), from a task after the one that queued it (`AuditLog.queue`).
        self._stop_if_cancelled("before its plan ran: nothing was written")
        running = asyncio.create_task(run_step(step, argument))
        await workflow.wait_condition(lambda: running.done() or self._cancel_requested)
        if not running.done():
            running.cancel()
            self._stop_if_cancelled(f"during {step.name}, before its plan ran: nothing was written")
        try:
            return running.result()
        except FailureError as error:
            raise TicketFailed(f"{step.name} failed: {describe(error, step.options.schedule_to_close)}") from error

    def _stop_if_cancelled(self, when: str) -> None:
        if self._cancel_requested:
            raise TicketCancelled(f"{CANCELLED} {when}")

    def _record(
        self,
        kind: AuditEventKind,
        summary: str,
        *,
        request: TicketRequest | None = None,
        risk: Risk | None = None,
        status: str | None = None,
        detail: dict[str, Any] | None = None,
        settled: bool = False,
    ) -> None:
        """Queue an audit event: written with the others before the ticket next leaves this worker, from a
        later workflow task unless `settled` (`AuditLog.queue`)."""
        self._audit.queue(
            RecordEventInput(
                ticket_id=self._status.ticket_id,
                kind=kind,
                summary=summary,
                request=request,
                stage=self._status.stage,
                status=status or self._status.status_label,
                risk=risk,
                detail=detail or {},
            ),
            settled=settled,
        )

    async def _leave(self, before_durable: Callable[[], Awaitable[object]] | None = None) -> bool:
        """The ticket is about to leave this worker (a step on another queue, a wait, the end): the audit log
        catches up first. Visibility catches up only where the ticket rests (`TicketIndex`).

        `before_durable` runs if the audit's local tries fail and it goes on to wait for the app DB.
        """
        return await self._audit.flush(before_durable)
