"""The MCP test harness: real agents' MCP clients against the real door, on the real pipeline.

`McpWorld` is one installation as an agent and a person meet it: the real activities and
`TicketWorkflow` on the session's Temporal dev server (offline planner, SQLite), the bot's
real ASGI app (Slack endpoint and `/mcp`) served by uvicorn with its lifespan, and a fake
Slack that the real `slack_sdk` clients talk to. Agents connect with the SDK's own client.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.testing import WorkflowEnvironment

from bot.app import create_app
from bot.context import BotContext
from core.settings import Settings
from mcp_door.identity import new_token
from rendering.slack_ids import APPROVE_ACTION_ID, ButtonValue
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack, Message
from tests.pipeline import Pipeline, running_pipeline
from tests.slack.conftest import ALICE, BOB, SIGNING_SECRET, SlackUserAgent, SlackWorld
from tests.support import build_settings, serve

MCP_CHANNEL = "C0AGENTS"
AGENTS = ["deploy-bot", "busy-bot", "sneaky-bot", "etl-bot", "shape-bot", "stdio-bot", "probe-bot"]
CALLS_PER_MINUTE = 6


def serve_with_lifespan(app: Any) -> AbstractAsyncContextManager[str]:
    """The bot with its lifespan on: the MCP session manager runs there."""
    return serve(app, lifespan=True)


@dataclass
class McpWorld:
    settings: Settings
    pipeline: Pipeline
    fake: FakeSlack
    base_url: str
    slack: SlackUserAgent
    tokens: dict[str, str]
    agent_entries: str
    temporal_address: str

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @asynccontextmanager
    async def agent(self, name: str, token: str | None = None) -> AsyncIterator[Client]:
        """The SDK's client over streamable HTTP, with the agent's bearer token."""
        headers = {"Authorization": f"Bearer {token or self.tokens[name]}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(self.mcp_url, http_client=http)) as client,
        ):
            yield client

    @asynccontextmanager
    async def target_connection(self) -> AsyncIterator[AsyncConnection]:
        async with self.pipeline.databases.target_engine.connect() as connection:
            yield connection

    async def approve_in_slack(self, ticket_label: str, approver: str) -> httpx.Response:
        """Click Approve on the ticket's message in the agents' channel, as Slack would send it, signed."""
        message: Message = await self.fake.wait_for(
            lambda: next(
                (m for m in self.fake.top_level(MCP_CHANNEL) if ticket_label in m.text and m.has_buttons), None
            ),
            what="the approval buttons",
        )
        value: ButtonValue | None = SlackWorld.button_value(message)
        assert value is not None
        click = self.slack.click
        return await click(APPROVE_ACTION_ID, value.encode(), approver, channel=MCP_CHANNEL, message_ts=message.ts)


def mcp_settings(data_dir: Path, task_queue: str, fake: FakeSlack, agent_entries: str) -> Settings:
    return build_settings(
        data_dir,
        task_queue,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        approvers=[ALICE, BOB],
        mcp_agents=agent_entries,
        mcp_channel=MCP_CHANNEL,
        mcp_calls_per_minute=CALLS_PER_MINUTE,
        mcp_tickets_per_hour=3,
        public_url="https://tickets.example.com",
    )


@pytest.fixture(scope="package")
async def mcp_world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[McpWorld]:
    """One world for the package; each test uses agents of its own, so their limits and tickets never mix."""
    async with AsyncExitStack() as stack:
        fake = await FakeSlack(channels={MCP_CHANNEL}).start()
        stack.push_async_callback(fake.stop)
        made = {name: new_token(name) for name in AGENTS}
        queue = f"mcp-{uuid.uuid4().hex[:10]}"
        entries = ",".join(m.entry for m in made.values())
        settings = mcp_settings(tmp_path_factory.mktemp("mcp") / "data", queue, fake, entries)
        pipeline = await stack.enter_async_context(running_pipeline(local_env.client, settings))
        context = BotContext(settings=settings, service=pipeline.service, databases=pipeline.databases)
        base_url = await stack.enter_async_context(serve_with_lifespan(create_app(context)))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
        tokens = {name: m.token for name, m in made.items()}
        slack = SlackUserAgent(http, fake, channel=MCP_CHANNEL)
        address = local_env.client.service_client.config.target_host
        yield McpWorld(settings, pipeline, fake, base_url, slack, tokens, entries, address)
