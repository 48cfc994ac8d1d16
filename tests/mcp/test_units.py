"""The door's rules on their own: settings, tokens, throttles, limits, the planning shortcut, the Slack line."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from temporalio.exceptions import ApplicationError

from activities.planning import proposed_plan
from bot.dashboard.throttle import Limit, LoginThrottle
from core.agents import agent_requester
from core.models import Plan, PlanTicketInput, SelectOperation, TicketContext, TicketRequest, TicketSource
from core.settings import ConfigError, Settings, load_settings
from mcp_door.http import AGENT_STATE_KEY, BearerAgentAuth
from mcp_door.identity import AgentDirectory, new_token
from mcp_door.limits import RateLimited, SlidingWindow
from mcp_door.stdio import McpConfigError, stdio_agent
from rendering.slack import requested_by

DEPLOY = new_token("deploy-bot")
ETL = new_token("etl")


def settings_with(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


def test_mcp_agents_are_parsed_with_the_commas_inside_their_hashes() -> None:
    settings = settings_with(mcp_agents=f"{DEPLOY.entry},\n{ETL.entry}")
    assert [agent.name for agent in settings.mcp_agents] == ["deploy-bot", "etl"]
    assert settings.mcp_agents[0].requester == "agent:deploy-bot"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mcp_agents": "deploy-bot:hunter2"}, "argon2 hash"),
        ({"mcp_agents": f"{DEPLOY.entry},{DEPLOY.entry}"}, "listed twice"),
        ({"mcp_agents": DEPLOY.entry, "approvers": "alice,deploy-bot"}, "APPROVERS must not name an MCP agent"),
        ({"approvers": "alice,agent:deploy-bot"}, "agent:deploy-bot"),
    ],
)
def test_settings_refuse_agents_that_could_approve_or_are_badly_configured(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_with(**values)


async def test_stdio_needs_a_token_of_a_configured_agent() -> None:
    with pytest.raises(McpConfigError, match="MCP_TOKEN is not set"):
        await stdio_agent(settings_with(mcp_agents=DEPLOY.entry))
    with pytest.raises(McpConfigError, match="matches no agent"):
        await stdio_agent(settings_with(mcp_agents=DEPLOY.entry, mcp_token=ETL.token))
    agent = await stdio_agent(settings_with(mcp_agents=DEPLOY.entry, mcp_token=DEPLOY.token))
    assert agent.requester == "agent:deploy-bot"


async def test_bad_tokens_are_throttled_per_address_while_a_known_token_still_works() -> None:
    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(getattr(request.state, AGENT_STATE_KEY).name)

    directory = AgentDirectory(load_settings(_env_file=None, mcp_agents=DEPLOY.entry).mcp_agents)
    throttle = LoginThrottle({"client": Limit(2, 60.0)})  # the door allows 10; 2 keeps the argon2 work short
    app = BearerAgentAuth(Starlette(routes=[Route("/", whoami)]), directory, throttle)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://door") as http:
        first = await http.get("/", headers={"Authorization": f"Bearer {DEPLOY.token}"})
        misses = [await http.get("/", headers={"Authorization": "Bearer deploy-bot.guess"}) for _ in range(2)]
        throttled = await http.get("/", headers={"Authorization": "Bearer etl.guess"})
        known = await http.get("/", headers={"Authorization": f"Bearer {DEPLOY.token}"})

    assert first.text == "deploy-bot"
    assert {miss.status_code for miss in misses} == {401}
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    assert known.status_code == 200 and known.text == "deploy-bot"


def test_a_sliding_window_refuses_past_its_limit_and_says_when_to_retry() -> None:
    now = [0.0]
    window = SlidingWindow("tickets", 2, 3600.0, clock=lambda: now[0])
    window.take("a")
    window.take("a")
    window.take("b")
    with pytest.raises(RateLimited, match=r"at most 2 tickets per hour; try again in 3600 s"):
        window.take("a")
    now[0] = 3600.0
    window.take("a")


def _plan_input(feedback: list[str]) -> PlanTicketInput:
    plan = Plan(summary="read", operations=[SelectOperation(table="plans")], planner="spoofed")
    request = TicketRequest(text="read", requester=agent_requester("etl"), source=TicketSource.MCP, proposed_plan=plan)
    return PlanTicketInput(ticket_id="abc", request=request, context=TicketContext(), feedback=feedback)


def test_a_proposed_plan_skips_the_planner_under_the_agents_name_and_is_never_replanned() -> None:
    plan = proposed_plan(_plan_input([]))
    assert plan.planner == "agent:etl" and plan.operations == [SelectOperation(table="plans")]
    with pytest.raises(ApplicationError) as raised:
        proposed_plan(_plan_input(["use the other table"]))
    assert raised.value.non_retryable


def test_slack_says_an_agent_filed_the_ticket_through_mcp() -> None:
    agent = TicketRequest(text="x", requester="agent:deploy-bot", source=TicketSource.MCP, reason="nightly sync")
    person = TicketRequest(text="x", requester="UDAVE0001", source=TicketSource.SLACK)
    assert requested_by(agent) == "Filed by agent `deploy-bot` through MCP · reason: nightly sync"
    assert requested_by(person) == "Requested by <@UDAVE0001> via slack"
