"""Agents over streamable HTTP: file a risky change, wait while a person approves it in Slack, see it done.

The SDK's real MCP client talks to `/mcp` on the bot's real app; the ticket runs on the real
pipeline (offline planner, SQLite); the approval is a signed Slack request to the same bot.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from mcp.types import TextResourceContents
from sqlalchemy import select

from core.demo import invoices
from tests.mcp.conftest import MCP_CHANNEL, McpWorld
from tests.slack.conftest import ALICE


async def unpaid_invoice(world: McpWorld) -> int:
    async with world.pipeline.databases.target_engine.connect() as connection:
        return int(await connection.scalar(select(invoices.c.id).where(invoices.c.status != "paid").limit(1)))


async def test_agent_files_a_risky_change_a_person_approves_in_slack_and_the_wait_returns_done(
    mcp_world: McpWorld,
) -> None:
    invoice = await unpaid_invoice(mcp_world)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with mcp_world.agent("deploy-bot") as agent:
        filed = await agent.call_tool(
            "request_change", {"text": f"mark invoice {invoice} as paid", "reason": "customer paid by wire"}
        )
        assert not filed.is_error, filed.content
        assert filed.structured_content is not None
        ticket = filed.structured_content["ticket_id"]
        waiting = asyncio.create_task(
            agent.call_tool("wait_for_ticket", {"ticket_id": ticket, "timeout": 60}, progress_callback=on_progress)
        )
        await mcp_world.fake.wait_for(lambda: any("awaiting approval" in (m or "") for _, _, m in progress))
        click = await mcp_world.approve_in_slack(ticket, ALICE)
        assert click.status_code == 200
        result = await asyncio.wait_for(waiting, 60)

    assert not result.is_error, result.content
    view = result.structured_content
    assert view is not None
    assert view["finished"] and view["status"] == "done"
    assert view["requester"] == "agent:deploy-bot" and view["risk"] == "medium"
    assert view["outcome"]["rows_changed"] == 1 and view["outcome"]["decided_by"] == [ALICE]
    assert [a["decider"] for a in view["approvals"] if a["counted"]] == [ALICE]
    stages = [message for _, _, message in progress]
    assert "risk medium, 0/1 approvals" in "".join(m or "" for m in stages) and "done" in (stages[-1] or "")
    assert [value for value, _, _ in progress] == sorted(value for value, _, _ in progress)
    async with mcp_world.pipeline.databases.target_engine.connect() as connection:
        assert await connection.scalar(select(invoices.c.status).where(invoices.c.id == invoice)) == "paid"
    [message] = [m for m in mcp_world.fake.top_level(MCP_CHANNEL) if ticket in m.text]
    assert "Filed by agent `deploy-bot` through MCP" in message.everything
    assert "customer paid by wire" in message.everything


async def test_tools_are_annotated_honestly_and_the_resource_shows_schema_and_policy(mcp_world: McpWorld) -> None:
    async with mcp_world.agent("etl-bot") as agent:
        tools = {tool.name: tool for tool in (await agent.list_tools()).tools}
        catalog = await agent.read_resource("agent-ticket://policy")

    assert set(tools) == {"request_change", "propose_plan", "ticket_status", "wait_for_ticket", "list_my_tickets"}
    for name in ("ticket_status", "wait_for_ticket", "list_my_tickets"):
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is True
    for name in ("request_change", "propose_plan"):
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is False
    operations = tools["propose_plan"].input_schema["properties"]["operations"]
    assert "items" in operations  # the plan's own JSON Schema: typed operations
    [content] = catalog.contents
    assert isinstance(content, TextResourceContents)
    document = json.loads(content.text)
    assert {table["name"] for table in document["tables"]} >= {"customers", "invoices", "users"}
    assert document["policy"]["tables"]["users"]["sensitive_columns"] == ["role", "email"]
    private = {t["name"]: sorted(c["name"] for c in t["columns"] if c["private"]) for t in document["tables"]}
    assert private["customers"] == ["billing_email"] and private["users"] == ["email"]  # as the policy says
    assert all(private[name] == sorted(document["policy"]["tables"][name]["private_columns"]) for name in private)
    assert "operations" in document["plan_schema"]["properties"]


async def test_requests_without_a_valid_agent_token_are_refused(mcp_world: McpWorld) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(base_url=mcp_world.base_url) as http:
        missing = await http.post("/mcp", json=body)
        wrong = await http.post("/mcp", json=body, headers={"Authorization": "Bearer deploy-bot.not-the-token"})

    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
