"""Starting tickets, reading their state and deciding on them: one service for every front door.

The bot, the dashboard and the CLI all go through `TicketService`. Decisions are judged by
the workflow alone: the service signs each with the front door's key (the person was
authenticated there), signals it, and reads the workflow's verdict (counted, or ignored and
why) from its status. A revert is a ticket too: `revert` starts one for an executed ticket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.decision_proof import sign_decision
from core.logs import ticket_log_context
from core.models import (
    ApprovalSettings,
    AuditEventKind,
    Decision,
    DecisionRecord,
    OutcomeStatus,
    RevertOf,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketSource,
    TicketStatus,
)
from core.names import (
    QUERY_STATUS,
    SIGNAL_APPROVE,
    SIGNAL_REJECT,
    WORKFLOW_NAME,
    WORKFLOW_TASK_QUEUE,
    short_id_from,
    ticket_label,
    workflow_id_for,
)
from core.observability import client_metrics
from core.request_proof import sign_request
from core.schema import AuditEventRow, TicketRow
from core.search_attributes import SearchAttributeCheck, start_attributes
from service.silence import why_unanswered

logger = logging.getLogger(__name__)

# How long a front door waits for the workflow's verdict on a decision it signalled, and how often it looks.
DECISION_TIMEOUT_SECONDS = 5.0
VERDICT_POLL_SECONDS = 0.05
# Long enough for the longest approval wait plus execution; the workflow enforces its own deadline.
WORKFLOW_EXECUTION_TIMEOUT = timedelta(days=60)
# How long a worker may hold one workflow task before Temporal gives it to another. A worker that
# dies inside one (a local activity: context, validation, the audit) stalls its ticket this long.
# 2 s bought recovery from such a kill, but a saturated worker (a burst of 1,500 tickets in the ack
# benchmark) then ran past it, lost its tasks to time-outs and replays, and did not drain in 10
# minutes; 10 s (the SDK's default) drains (bench/notes.md).
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=10)


class CannotRevert(ValueError):
    """The ticket asked to be reverted is not one that changed rows; the message says why."""


class TicketNotFound(LookupError):
    """No ticket with that id exists in Temporal."""


@dataclass(frozen=True)
class StartedTicket:
    short_id: str
    workflow_id: str
    already_existed: bool

    @property
    def label(self) -> str:
        return ticket_label(self.short_id)


def new_short_id(dedupe_key: str | None = None) -> str:
    """A short ticket id; the same dedupe key always gives the same id (duplicate starts are no-ops)."""
    if dedupe_key:
        return hashlib.sha256(dedupe_key.encode()).hexdigest()[:10]
    return uuid.uuid4().hex[:10]


class TicketService:
    def __init__(
        self,
        client: Client,
        app_sessions: async_sessionmaker[AsyncSession] | None = None,
        task_queue: str = WORKFLOW_TASK_QUEUE,
        *,
        signing_key: bytes | None = None,
        decision_timeout: float = DECISION_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._app_sessions = app_sessions
        self._task_queue = task_queue
        self._signing_key = signing_key
        self._decision_timeout = decision_timeout
        self._search_attributes = SearchAttributeCheck(client, client.namespace)

    @property
    def client(self) -> Client:
        return self._client

    async def start(self, request: TicketRequest, dedupe_key: str | None = None) -> StartedTicket:
        """Start a ticket's workflow; starting the same dedupe key again starts nothing."""
        short_id = new_short_id(dedupe_key)
        workflow_id = workflow_id_for(short_id)
        source = request.source.value
        if self._signing_key is not None:  # the worker refuses a request naming a person unsigned
            request = sign_request(request, workflow_id, self._signing_key, datetime.now(UTC))
        began = time.perf_counter()
        with ticket_log_context(short_id):
            indexed = await self._search_attributes.registered()
            try:
                await self._client.start_workflow(
                    WORKFLOW_NAME,
                    request,
                    id=workflow_id,
                    task_queue=self._task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    execution_timeout=WORKFLOW_EXECUTION_TIMEOUT,
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                    request_eager_start=True,
                    search_attributes=start_attributes(request.requester, Stage.RECEIVED.value) if indexed else None,
                )
            except WorkflowAlreadyStartedError:
                client_metrics.tickets_started.labels(source, "duplicate").inc()
                logger.info("%s already exists (duplicate start from %s)", ticket_label(short_id), source)
                return StartedTicket(short_id, workflow_id, already_existed=True)
            client_metrics.tickets_started.labels(source, "started").inc()
            client_metrics.ticket_start_seconds.labels(source).observe(time.perf_counter() - began)
            logger.info("%s started from %s by %s", ticket_label(short_id), source, request.requester)
        return StartedTicket(short_id, workflow_id, already_existed=False)

    async def revert(
        self,
        ticket_ref: str,
        requester: str,
        *,
        approval: ApprovalSettings,
        source: TicketSource = TicketSource.CLI,
        include_conflicts: bool = False,
        dedupe_key: str | None = None,
    ) -> StartedTicket:
        """Start the ticket that undoes `ticket_ref`'s change (docs/undo.md); `CannotRevert` says why not.

        The revert goes to the original's channel; who may approve it is `approval`, today's
        settings of the front door (an approver removed since the original must not decide on
        its revert). Whether it may run (already
        reverted, past the window, rows changed since) is the workflow's to judge, from the
        before-images in the target DB; here only what the status shows is checked first. The
        same `dedupe_key` (a front door's one click, sent twice) starts one revert, not two.
        """
        original = await self.status(ticket_ref)
        label = ticket_label(original.ticket_id)
        outcome = original.outcome
        if outcome is None or outcome.status is not OutcomeStatus.DONE:
            state = outcome.status.value if outcome else original.stage.value
            raise CannotRevert(f"{label} is {state}: only a ticket that executed can be reverted")
        if outcome.execution is None or outcome.execution.rows_changed == 0:
            raise CannotRevert(f"{label} changed no rows: there is nothing to revert")
        if self._app_sessions is not None and (undone_by := reverted_by(await self.audit_trail(ticket_ref))):
            raise CannotRevert(f"{label} was already reverted by {ticket_label(short_id_from(undone_by))}")
        words = f"revert {label}" + (", overwriting changes made since" if include_conflicts else "")
        request = TicketRequest(
            text=words,
            requester=requester,
            source=source,
            channel=original.request.channel,
            approval=approval,
            reverts=RevertOf(workflow_id=original.workflow_id, include_conflicts=include_conflicts),
        )
        return await self.start(request, dedupe_key)

    def handle(self, ticket_ref: str) -> WorkflowHandle[object, TicketOutcome]:
        return self._client.get_workflow_handle(workflow_id_for(short_id_from(ticket_ref)), result_type=TicketOutcome)

    async def status(self, ticket_ref: str) -> TicketStatus:
        try:
            return await self.handle(ticket_ref).query(QUERY_STATUS, result_type=TicketStatus)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise TicketNotFound(f"no ticket {ticket_label(short_id_from(ticket_ref))}") from error
            raise

    async def why_unanswered(self, ticket_ref: str) -> str:
        """Why the status query got no answer: no worker polls the ticket's queue, or it is busy or slow."""
        return await why_unanswered(
            self._client, workflow_id_for(short_id_from(ticket_ref)), ticket_label(short_id_from(ticket_ref))
        )

    async def is_running(self, ticket_ref: str) -> bool:
        description = await self.handle(ticket_ref).describe()
        return description.status == WorkflowExecutionStatus.RUNNING

    async def decide(self, ticket_ref: str, decision: Decision) -> DecisionRecord | None:
        """Sign the decision, signal it to the workflow (the one judge) and return its verdict.

        None: no verdict within the decision timeout (no worker is running, or it is slow). The
        signal is durable: Temporal keeps it, and the workflow judges it when a worker is back.
        """
        verb = "approve" if decision.approve else "reject"
        decision = decision.model_copy(update={"id": uuid.uuid4().hex[:16]})
        if self._signing_key is not None:
            decision = sign_decision(decision, self._signing_key, datetime.now(UTC))
        handle = self.handle(ticket_ref)
        label = ticket_label(short_id_from(ticket_ref))
        with ticket_log_context(ticket_ref):
            try:
                await handle.signal(SIGNAL_APPROVE if decision.approve else SIGNAL_REJECT, decision)
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:  # also what Temporal says of a finished ticket
                    problem = f"{label} is not open for decisions: no such ticket, or it has finished"
                    raise TicketNotFound(problem) from error
                raise
            record = await self._verdict_on(ticket_ref, decision.id)
            verdict = "pending" if record is None else ("counted" if record.accepted else "ignored")
            client_metrics.decisions_sent.labels(decision.source.value, verb, verdict).inc()
            reason = "" if record is None else record.reason
            logger.info("%s by %s from %s: %s %s", verb, decision.decider, decision.source.value, verdict, reason)
        return record

    async def _verdict_on(self, ticket_ref: str, decision_id: str) -> DecisionRecord | None:
        """The workflow's record of decision `decision_id`, once it has judged it (None past the timeout)."""
        deadline = time.monotonic() + self._decision_timeout
        while True:
            try:
                status = await self.status(ticket_ref)
            except (RPCError, WorkflowQueryFailedError):
                status = None
            if status is not None:
                for record in reversed(status.decisions):
                    if record.decision.id == decision_id:
                        return record
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(VERDICT_POLL_SECONDS)

    async def result(self, ticket_ref: str) -> TicketOutcome:
        return await self.handle(ticket_ref).result()

    async def list_tickets(
        self, status: str | None = None, limit: int = 50, risk: str | None = None, requester: str | None = None
    ) -> list[TicketRow]:
        """Tickets from the app DB, pending approvals first, newest first; optionally of one status, risk, requester."""
        if self._app_sessions is None:
            raise RuntimeError("TicketService needs the app DB to list tickets")
        return await list_tickets(self._app_sessions, status=status, limit=limit, risk=risk, requester=requester)

    async def audit_trail(self, ticket_ref: str) -> list[AuditEventRow]:
        if self._app_sessions is None:
            raise RuntimeError("TicketService needs the app DB to read the audit log")
        return await audit_trail(self._app_sessions, ticket_ref)


async def audit_trail(app_sessions: async_sessionmaker[AsyncSession], ticket_ref: str) -> list[AuditEventRow]:
    """A ticket's audit events from the app DB, oldest first."""
    query = select(AuditEventRow).where(AuditEventRow.ticket_id == short_id_from(ticket_ref)).order_by(AuditEventRow.id)
    async with app_sessions() as session:
        return list((await session.scalars(query)).all())


def reverted_by(events: list[AuditEventRow]) -> str | None:
    """The workflow id of the ticket that undid this one's change: the revert notes it on this record."""
    for event in reversed(events):
        if event.kind == AuditEventKind.REVERTED.value and (event.detail or {}).get("reverted_by"):
            return str(event.detail["reverted_by"])
    return None


async def list_tickets(
    app_sessions: async_sessionmaker[AsyncSession],
    *,
    status: str | None = None,
    limit: int = 50,
    risk: str | None = None,
    requester: str | None = None,
) -> list[TicketRow]:
    """Tickets from the app DB alone (no Temporal needed), pending approvals first, newest first."""
    query = select(TicketRow)
    if status:
        query = query.where(TicketRow.status == status)
    if risk:
        query = query.where(TicketRow.risk == risk)
    if requester:
        query = query.where(TicketRow.requester == requester)
    query = query.order_by((TicketRow.status == "awaiting_approval").desc(), TicketRow.created_at.desc())
    async with app_sessions() as session:
        return list((await session.scalars(query.limit(limit))).all())
