"""What each MCP tool does, for one authenticated agent: file, propose, read, wait, list.

Free of MCP types, so the rules an agent is held to read in one place: every call counts
against the agent's rate, every ticket against its filing budget; input is validated by the
shared pydantic models before anything starts; an agent sees only the tickets it filed; and
nothing here can decide on a ticket.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError

from core.models import Operation, Plan, TicketRequest, TicketSource, TicketStatus
from core.names import short_id_from, ticket_label
from core.settings import Settings
from mcp_door.identity import Agent
from mcp_door.limits import SlidingWindow
from mcp_door.views import FiledTicket, TicketList, TicketSummary, TicketView
from service.tickets import TicketNotFound, TicketService

logger = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 600
POLL_SECONDS = 0.5
LIST_LIMIT = 50
_SHORT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

OnStage = Callable[[TicketStatus], Awaitable[None]]


class Refused(Exception):
    """Input or a request the door will not act on; the message is for the agent."""


def validation_message(error: ValidationError) -> str:
    """One line per problem, naming where in the input it is, without echoing the input back."""
    lines = []
    for issue in error.errors():
        where = ".".join(str(part) for part in issue["loc"]) or "input"
        lines.append(f"{where}: {issue['msg']}")
    return "; ".join(lines)


class AgentDesk:
    """Tickets for agents, through the same `TicketService` as every other front door."""

    def __init__(self, service: TicketService, settings: Settings, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._service = service
        self._settings = settings
        self._poll = poll_seconds
        self._calls = SlidingWindow("tool calls", settings.mcp_calls_per_minute, 60.0)
        self._filings = SlidingWindow("tickets", settings.mcp_tickets_per_hour, 3600.0)

    @property
    def channel(self) -> str | None:
        """Where agents' tickets are posted in Slack: MCP_CHANNEL, else the escalation channel."""
        return self._settings.mcp_channel or self._settings.slack_escalation_channel

    def admit(self, agent: Agent) -> None:
        """Count one tool call against the agent's rate; raises `RateLimited` when it is spent."""
        self._calls.take(agent.name)

    async def request_change(
        self, agent: Agent, text: str, reason: str = "", idempotency_key: str | None = None
    ) -> FiledTicket:
        """File a ticket in words; it is planned, checked and approved like any other."""
        return await self._file(agent, self._request(agent, text, reason), idempotency_key)

    async def propose_plan(
        self,
        agent: Agent,
        summary: str,
        operations: Sequence[Operation],
        rationale: str = "",
        idempotency_key: str | None = None,
    ) -> FiledTicket:
        """File a ticket with the agent's own typed operations: no LLM, the same dry run, policy and approvals."""
        try:
            plan = Plan.model_validate(
                {
                    "summary": summary,
                    "rationale": rationale,
                    "operations": [operation.model_dump() for operation in operations],
                    "planner": agent.requester,
                }
            )
        except ValidationError as error:
            raise Refused(f"the plan is not valid: {validation_message(error)}") from error
        if not plan.operations:
            raise Refused("the plan has no operations: propose at least one")
        request = self._request(agent, plan.summary or "proposed plan", rationale, plan)
        return await self._file(agent, request, idempotency_key)

    async def status(self, agent: Agent, ticket: str) -> TicketView:
        return TicketView.of(await self._own_status(agent, ticket), self._settings.public_url)

    async def wait(self, agent: Agent, ticket: str, seconds: float, on_stage: OnStage) -> TicketView:
        """Poll until the ticket ends or `seconds` pass, calling `on_stage` at each new stage."""
        deadline = time.monotonic() + max(0.0, min(seconds, MAX_WAIT_SECONDS))
        seen = None
        while True:
            status = await self._own_status(agent, ticket)
            if status.stage is not seen:
                seen = status.stage
                await on_stage(status)
            remaining = deadline - time.monotonic()
            if status.outcome is not None or remaining <= 0:
                return TicketView.of(status, self._settings.public_url)
            await asyncio.sleep(min(self._poll, remaining))

    async def list_mine(self, agent: Agent) -> TicketList:
        rows = await self._service.list_tickets(requester=agent.requester, limit=LIST_LIMIT)
        return TicketList(tickets=[TicketSummary.of(row) for row in rows])

    # ------------------------------------------------------------ helpers

    def _request(self, agent: Agent, text: str, reason: str, plan: Plan | None = None) -> TicketRequest:
        try:
            return TicketRequest(
                text=text,
                reason=reason,
                requester=agent.requester,
                source=TicketSource.MCP,
                channel=self.channel,
                approval=self._settings.approval_settings(),
                proposed_plan=plan,
            )
        except ValidationError as error:
            raise Refused(validation_message(error)) from error

    async def _file(self, agent: Agent, request: TicketRequest, idempotency_key: str | None) -> FiledTicket:
        if idempotency_key is not None and not _SHORT_ID.match(idempotency_key):
            raise Refused("idempotency_key: 1-64 letters, digits, '-' or '_'")
        self._filings.take(agent.name)
        dedupe = f"mcp:{agent.name}:{idempotency_key}" if idempotency_key else None
        started = await self._service.start(request, dedupe_key=dedupe)
        logger.info("%s filed by agent %s through MCP", started.label, agent.name)
        stage = "received"
        if started.already_existed:
            stage = (await self._own_status(agent, started.short_id)).status_label
        return FiledTicket(
            ticket_id=started.label,
            stage=stage,
            already_existed=started.already_existed,
            dashboard_url=f"{self._settings.public_url.rstrip('/')}/tickets/{started.short_id}",
        )

    async def _own_status(self, agent: Agent, ticket: str) -> TicketStatus:
        """The ticket's status when this agent filed it; any other ticket is "not found", as if absent."""
        short_id = short_id_from(ticket)
        if not _SHORT_ID.match(short_id):
            raise Refused("ticket id: expected T- followed by letters and digits, e.g. T-3f9a0c1d2e")
        missing = Refused(f"no ticket {ticket_label(short_id)} filed by agent {agent.name}")
        try:
            status = await self._service.status(short_id)
        except TicketNotFound as error:
            raise missing from error
        if status.request.requester != agent.requester:
            raise missing
        return status
