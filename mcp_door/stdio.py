"""`agent-ticket mcp`: the MCP server over stdio, for an agent on the same machine.

The MCP client starts this process; `MCP_TOKEN` in its environment says which agent it is,
checked against `MCP_AGENTS` like a bearer token over HTTP. stdout carries the protocol, so
everything else (logs) goes to stderr.
"""

from __future__ import annotations

import logging

from core.bootstrap import Databases
from core.settings import Settings
from mcp_door.catalog import CatalogReader
from mcp_door.desk import AgentDesk
from mcp_door.identity import Agent, AgentDirectory
from mcp_door.server import build_server
from service.temporal import connect
from service.tickets import TicketService

logger = logging.getLogger(__name__)


class McpConfigError(Exception):
    """The stdio server cannot say which agent it serves; the message names the setting."""


async def stdio_agent(settings: Settings) -> Agent:
    """The agent `MCP_TOKEN` proves, or `McpConfigError`."""
    if not settings.mcp_agents:
        raise McpConfigError("MCP_AGENTS names no agent: add one with `agent-ticket mcp token NAME`")
    if settings.mcp_token is None:
        raise McpConfigError("MCP_TOKEN is not set: give the agent's token in the MCP client's environment")
    agent = await AgentDirectory(list(settings.mcp_agents)).authenticate(settings.mcp_token.get_secret_value())
    if agent is None:
        raise McpConfigError("MCP_TOKEN matches no agent in MCP_AGENTS")
    return agent


async def serve_stdio(settings: Settings) -> None:
    """Serve one agent over stdin/stdout until the client closes them."""
    agent = await stdio_agent(settings)
    client = await connect(settings)
    databases = Databases.open(settings)
    try:
        service = TicketService(client, databases.app_sessions, settings.temporal_task_queue)
        desk = AgentDesk(service, settings)
        catalog = CatalogReader(databases.app_sessions, databases.target_engine)
        logger.info("MCP over stdio for agent %s", agent.name)
        await build_server(desk, catalog, lambda _ctx: agent).run_stdio_async()
    finally:
        await databases.close()
