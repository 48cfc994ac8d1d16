"""What an agent must not get away with: deciding, flooding, malformed plans, SQL in values.

Each test uses an agent of its own on the package's world, so their limits never mix. A
refusal is a tool error whose text says what was wrong, and nothing starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp import Client
from sqlalchemy import func, select

from core.demo import customers, users
from core.models import DecisionSource, Stage
from core.names import SIGNAL_APPROVE, short_id_from
from tests.mcp.conftest import CALLS_PER_MINUTE, McpWorld


def text_of(result: Any) -> str:
    return " ".join(getattr(item, "text", "") for item in result.content)


async def my_tickets(agent: Client) -> list[dict[str, Any]]:
    listed = await agent.call_tool("list_my_tickets", {})
    assert not listed.is_error, text_of(listed)
    assert listed.structured_content is not None
    return list(listed.structured_content["tickets"])


MARK_PAID = {"kind": "update", "table": "invoices", "values": [{"column": "status", "value": "paid"}]}


async def test_an_agent_has_no_way_to_decide_and_its_decisions_never_count(mcp_world: McpWorld) -> None:
    async with mcp_world.agent("sneaky-bot") as agent:
        tools = {tool.name for tool in (await agent.list_tools()).tools}
        attempt = await agent.call_tool("approve", {"ticket_id": "T-0000000000"})
        filed = await agent.call_tool(
            "propose_plan",
            {
                "summary": "mark invoice 3 as paid",
                "operations": [{**MARK_PAID, "filters": [{"column": "id", "op": "eq", "value": 3}]}],
            },
        )
    assert not {"approve", "reject", "decide"} & tools
    assert attempt.is_error
    assert not filed.is_error, text_of(filed)
    assert filed.structured_content is not None
    ticket = filed.structured_content["ticket_id"]

    # Even a decision sent past the door, straight to the workflow, is recorded and not counted.
    pipeline = mcp_world.pipeline
    status = await pipeline.wait_for_stage(ticket, Stage.AWAITING_APPROVAL)
    assert status.approval is not None and status.plan is not None
    assert status.plan.planner == "agent:sneaky-bot"
    decision = status.approval.decision("agent:sneaky-bot", DecisionSource.API)
    signed = await pipeline.service.decide(ticket, decision)  # even signed by a front door's key
    assert signed is not None and not signed.accepted
    assert signed.reason == "the requester cannot decide on their own ticket"
    await pipeline.service.handle(ticket).signal(SIGNAL_APPROVE, decision)  # unsigned, past every door
    for _ in range(100):
        status = await pipeline.service.status(ticket)
        if len(status.decisions) == 2:
            break
        await asyncio.sleep(0.05)
    assert [(r.accepted, r.reason) for r in status.decisions][1] == (False, "unsigned")
    assert status.stage is Stage.AWAITING_APPROVAL and status.approved_by == []


async def test_an_agent_over_its_rates_is_refused_with_when_to_retry(mcp_world: McpWorld) -> None:
    show = {
        "summary": "read a customer",
        "operations": [{"kind": "select", "table": "customers", "columns": ["id", "name"], "limit": 1}],
    }
    async with mcp_world.agent("busy-bot") as agent:
        filed = [await agent.call_tool("propose_plan", show) for _ in range(3)]
        fourth = await agent.call_tool("propose_plan", show)
        calls_left = [await agent.call_tool("list_my_tickets", {}) for _ in range(CALLS_PER_MINUTE - 4)]
        over = await agent.call_tool("list_my_tickets", {})

    assert not any(result.is_error for result in filed + calls_left)
    assert fourth.is_error and "at most 3 tickets per hour" in text_of(fourth) and "try again in" in text_of(fourth)
    assert over.is_error and f"at most {CALLS_PER_MINUTE} tool calls per minute" in text_of(over)
    assert calls_left[-1].structured_content is not None
    assert len(calls_left[-1].structured_content["tickets"]) <= 3
    filed_ids = {short_id_from(result.structured_content["ticket_id"]) for result in filed if result.structured_content}
    assert len(filed_ids) == 3
    for _ in range(100):  # the listing is the app DB's projection: it catches up within moments
        listed = {row.ticket_id for row in await mcp_world.pipeline.service.list_tickets(requester="agent:busy-bot")}
        if listed >= filed_ids:
            break
        await asyncio.sleep(0.05)
    assert listed == filed_ids  # the three filed, and nothing from the refused one (refused before any start)


async def test_malformed_plans_are_refused_with_a_clear_error_and_start_nothing(mcp_world: McpWorld) -> None:
    bad_plans = {
        "an unknown kind": [{"kind": "drop", "table": "users"}],
        "SQL as a table name": [{"kind": "delete", "table": "users; DROP TABLE users", "filters": []}],
        "an update with no values": [{"kind": "update", "table": "users", "values": []}],
        "no operations": [],
    }
    async with mcp_world.agent("shape-bot") as agent:
        results = {
            why: await agent.call_tool("propose_plan", {"summary": why, "operations": operations})
            for why, operations in bad_plans.items()
        }
        tickets = await my_tickets(agent)

    for why, result in results.items():
        assert result.is_error, why
        assert "operations" in text_of(result), (why, text_of(result))
    assert "at least one" in text_of(results["no operations"])
    assert tickets == []


async def test_sql_in_values_is_bound_as_data_never_run(mcp_world: McpWorld) -> None:
    injected = "x'); DROP TABLE users; --"
    always_true = {"column": "name", "op": "eq", "value": "' OR '1'='1"}
    async with mcp_world.target_connection() as connection:
        users_before = await connection.scalar(select(func.count()).select_from(users))
    async with mcp_world.agent("etl-bot") as agent:
        rename = await agent.call_tool(
            "propose_plan",
            {
                "summary": "rename customer 1",
                "operations": [
                    {
                        "kind": "update",
                        "table": "customers",
                        "values": [{"column": "name", "value": injected}],
                        "filters": [{"column": "id", "op": "eq", "value": 1}],
                    }
                ],
            },
        )
        probe = await agent.call_tool(
            "propose_plan",
            {
                "summary": "find a customer",
                "operations": [
                    {"kind": "select", "table": "customers", "columns": ["id", "name"], "filters": [always_true]}
                ],
            },
        )
        assert rename.structured_content is not None and probe.structured_content is not None
        renamed = await agent.call_tool("wait_for_ticket", {"ticket_id": rename.structured_content["ticket_id"]})
        probed = await agent.call_tool("wait_for_ticket", {"ticket_id": probe.structured_content["ticket_id"]})

    assert renamed.structured_content is not None and probed.structured_content is not None
    assert renamed.structured_content["status"] == "done", renamed.structured_content
    assert probed.structured_content["status"] == "done"
    assert probed.structured_content["withheld"]  # no person approved it: the agent is not told the counts
    probe_status = await mcp_world.pipeline.service.status(short_id_from(probed.structured_content["ticket_id"]))
    assert probe_status.report is not None
    assert probe_status.report.impacts[0].rows_affected == 0  # matched as a string, not SQL
    async with mcp_world.target_connection() as connection:
        assert await connection.scalar(select(customers.c.name).where(customers.c.id == 1)) == injected
        assert await connection.scalar(select(func.count()).select_from(users)) == users_before
