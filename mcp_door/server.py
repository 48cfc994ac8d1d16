"""The MCP server: five tools and one resource, the same over stdio and streamable HTTP.

The tools are thin: find out which agent is calling (`Identify`, given by the transport),
count the call against its rate, and hand over to `AgentDesk`. Anything the desk refuses
becomes a tool error whose text says what to fix; nothing has started by then.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from temporalio.service import RPCError

from core.models import MAX_OPERATIONS, MAX_TICKET_TEXT, Operation, TicketStatus
from core.names import ticket_label
from mcp_door.catalog import CATALOG_URI, CatalogReader
from mcp_door.desk import MAX_WAIT_SECONDS, AgentDesk, Refused
from mcp_door.identity import Agent
from mcp_door.limits import RateLimited
from mcp_door.views import STAGE_ORDER, FiledTicket, TicketList, TicketView

logger = logging.getLogger(__name__)

SERVER_NAME = "agent-ticket"
INSTRUCTIONS = (
    "File database changes as tickets and wait for a person's approval. Read the "
    f"{CATALOG_URI} resource for the tables you may plan against and the policy you are held to. "
    "Use request_change to ask in words, or propose_plan with typed operations when you plan yourself; "
    "then wait_for_ticket. You cannot approve: people decide in Slack or on the dashboard."
)

Identify = Callable[[Context], Agent]
P = ParamSpec("P")
R = TypeVar("R")

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)

TicketId = Annotated[str, Field(description="the ticket id, e.g. T-3f9a0c1d2e", max_length=80)]
WaitSeconds = Annotated[float, Field(description="seconds to wait at most", ge=0, le=MAX_WAIT_SECONDS)]
Operations = Annotated[
    list[Operation],
    Field(description="select, insert, update or delete with structured filters; never SQL", max_length=MAX_OPERATIONS),
]
IdempotencyKey = Annotated[
    str | None,
    Field(default=None, description="optional; the same key files the same ticket once (1-64 letters, digits, - or _)"),
]


def refusals_as_tool_errors(tool: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn what the door refuses, and an unreachable Temporal, into tool errors the agent can read."""

    @functools.wraps(tool)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await tool(*args, **kwargs)
        except (Refused, RateLimited) as refused:
            raise ToolError(str(refused)) from refused
        except RPCError as error:
            logger.warning("MCP tool %s: Temporal unavailable: %s", tool.__name__, error)
            raise ToolError("the ticket service is unavailable right now; try again shortly") from error

    return wrapper


def stage_message(status: TicketStatus) -> str:
    report = status.report
    text = f"{ticket_label(status.ticket_id)}: {status.status_label.replace('_', ' ')}"
    if report is not None:
        text += f", risk {report.risk.value}"
    if status.pending_approval and report is not None:
        counted = sum(1 for record in status.decisions if record.accepted and record.decision.approve)
        text += f", {counted}/{report.required_approvals} approvals"
    return text


def build_server(desk: AgentDesk, catalog: CatalogReader, identify: Identify) -> MCPServer:
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version="1")

    def caller(ctx: Context) -> Agent:
        agent = identify(ctx)
        desk.admit(agent)
        return agent

    @server.tool(title="Request a database change", annotations=WRITES)
    @refusals_as_tool_errors
    async def request_change(
        text: Annotated[str, Field(description="the change, in words", max_length=MAX_TICKET_TEXT)],
        ctx: Context,
        reason: Annotated[str, Field(description="why it is needed; shown to the approvers", max_length=1000)] = "",
        idempotency_key: IdempotencyKey = None,
    ) -> FiledTicket:
        """File a ticket as this agent. It is planned, dry-run and checked against the policy; risky
        changes wait for people to approve. Returns the ticket id and stage; follow with wait_for_ticket."""
        return await desk.request_change(caller(ctx), text, reason, idempotency_key)

    @server.tool(title="Propose a plan of typed operations", annotations=WRITES)
    @refusals_as_tool_errors
    async def propose_plan(
        summary: Annotated[str, Field(description="one line: what the plan does", max_length=500)],
        operations: Operations,
        ctx: Context,
        rationale: Annotated[str, Field(description="why; shown to the approvers", max_length=1000)] = "",
        idempotency_key: IdempotencyKey = None,
    ) -> FiledTicket:
        """File a ticket with your own plan. No LLM plans it, but it goes through the same dry run,
        policy and approvals as any ticket. Values are bound as data, never run as SQL."""
        return await desk.propose_plan(caller(ctx), summary, operations, rationale, idempotency_key)

    @server.tool(title="Ticket status", annotations=READS)
    @refusals_as_tool_errors
    async def ticket_status(ticket_id: TicketId, ctx: Context) -> TicketView:
        """Stage, plan, risk, approvals so far, and the outcome with the rows changed, of a ticket you filed."""
        return await desk.status(caller(ctx), ticket_id)

    @server.tool(title="Wait for a ticket", annotations=READS)
    @refusals_as_tool_errors
    async def wait_for_ticket(
        ticket_id: TicketId,
        ctx: Context,
        timeout: WaitSeconds = 60,  # noqa: ASYNC109 - the tool's published argument: how long to poll
    ) -> TicketView:
        """Wait until the ticket finishes or the timeout passes, with a progress notification at each
        stage; returns its state either way (check `finished`)."""

        async def progress(status: TicketStatus) -> None:
            await ctx.report_progress(STAGE_ORDER.index(status.stage) + 1, len(STAGE_ORDER), stage_message(status))

        return await desk.wait(caller(ctx), ticket_id, timeout, progress)

    @server.tool(title="My tickets", annotations=READS)
    @refusals_as_tool_errors
    async def list_my_tickets(ctx: Context) -> TicketList:
        """The tickets this agent filed, waiting for approval first, newest first."""
        return await desk.list_mine(caller(ctx))

    @server.resource(
        CATALOG_URI,
        name="target-schema-and-policy",
        title="Target schema and safety policy",
        description="The tables you may plan against, their columns, and the policy every plan is judged by.",
        mime_type="application/json",
    )
    async def target_catalog() -> str:
        return (await catalog.read()).model_dump_json(indent=1)

    return server
