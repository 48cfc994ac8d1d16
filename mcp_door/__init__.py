"""The MCP front door: AI agents in MCP clients file tickets and wait for a human's yes.

`server.build_server` is the MCP server (tools and the policy resource), the same over both
transports: `stdio.serve_stdio` for a local agent (`agent-ticket mcp`), `http.McpHttpDoor` for
streamable HTTP mounted in the bot behind a bearer token per agent. The rules an agent is
held to live in `desk` (what each tool does), `identity` (who the caller is) and `limits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context import BotContext
    from mcp_door.http import McpHttpDoor


def http_door(context: BotContext) -> McpHttpDoor | None:
    """The streamable HTTP door for the bot when `MCP_AGENTS` names an agent; the SDK is imported only then."""
    if not context.settings.mcp_agents:
        return None
    from mcp_door.http import McpHttpDoor

    return McpHttpDoor(context)
