"""A local agent over stdio: its MCP client starts `agent-ticket mcp`, which files and follows tickets.

The real console script in a subprocess, configured only by its environment (as Claude Desktop
or Cursor would start it), on the package's pipeline. The client uses the pre-2026 initialize
handshake, as the MCP clients in the field still do.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.mcp.conftest import McpWorld


def agent_ticket_mcp(world: McpWorld, agent: str, cwd: Path) -> StdioServerParameters:
    settings = world.settings
    return StdioServerParameters(
        command=str(Path(sys.executable).with_name("agent-ticket")),
        args=["mcp"],
        cwd=cwd,  # no .env there: the environment below is the whole configuration
        env={
            "TEMPORAL_ADDRESS": world.temporal_address,
            "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "AGENT_TICKET_DATA_DIR": str(settings.data_dir),
            "APPROVERS": ",".join(settings.approvers),
            "MCP_AGENTS": world.agent_entries,
            "MCP_TOKEN": world.tokens[agent],
            "LOG_FORMAT": "json",
        },
    )


async def test_a_local_agent_files_a_plan_and_waits_for_it_over_stdio(mcp_world: McpWorld, tmp_path: Path) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(agent_ticket_mcp(mcp_world, "stdio-bot", tmp_path), mode="legacy") as agent:
        tools = {tool.name for tool in (await agent.list_tools()).tools}
        filed = await agent.call_tool(
            "propose_plan",
            {"summary": "read plans", "operations": [{"kind": "select", "table": "plans", "limit": 5}]},
        )
        assert filed.structured_content is not None, filed.content
        ticket = filed.structured_content["ticket_id"]
        waited = await agent.call_tool(
            "wait_for_ticket", {"ticket_id": ticket, "timeout": 30}, progress_callback=on_progress
        )
        mine = await agent.call_tool("list_my_tickets", {})

    assert "wait_for_ticket" in tools
    assert waited.structured_content is not None, waited.content
    assert waited.structured_content["status"] == "done"
    assert waited.structured_content["requester"] == "agent:stdio-bot"
    assert waited.structured_content["plan"]["planner"] == "agent:stdio-bot"
    assert progress and progress[-1] == 7
    assert mine.structured_content is not None
    assert [t["ticket_id"] for t in mine.structured_content["tickets"]] == [ticket]
