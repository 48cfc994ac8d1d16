"""The Slack test harness: a fake Slack Web API, the real bot served by uvicorn, signed requests.

`SlackWorld` is one ticket system as a Slack user meets it: the bot's real ASGI app on
127.0.0.1, the real `TicketWorkflow` on the session's Temporal dev server with the real
activities on SQLite (context, safety check, execution, audit log, the Slack notifier and
approver resolver; only the LLM is scripted, `script.plan`), and a fake Slack that the real
`slack_sdk` clients talk to. Requests to the bot are signed exactly as Slack signs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bot.app import create_app
from bot.context import BotContext
from bot.slack.app import bot_web_client, http_routes
from bot.slack.front_door import SlackFrontDoor
from core.bootstrap import Databases, init_databases
from core.ledger import executions
from core.models import (
    TicketOutcome,
    TicketStatus,
)
from core.schema import AuditEventRow
from core.settings import Settings
from rendering.slack_ids import APPROVE_ACTION_ID, REJECT_MODAL_CALLBACK_ID, ButtonValue
from service.tickets import TicketService, new_short_id
from tests.fakes.slack_server import BOT_TOKEN, TEAM_ID, FakeSlack, Message, SlackCall
from tests.pipeline import with_activities
from tests.support import build_settings, serve, wait_for_status
from tests.workflows.fake_activities import UPGRADE_PLAN, ScriptedActivities
from worker.activities import build_activity_set
from worker.build import build_workers

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0TICKETS"
ESCALATION_CHANNEL = "C0ESCALATE"
PUBLIC_URL = "https://tickets.example.com"
REQUESTER = "UDAVE0001"
ALICE = "UALICE001"
BOB = "UBOB00001"
CAROL = "UCAROL001"  # an approver through the S0OPS user group
MALLORY = "UMALLORY1"  # not an approver
OPS_GROUP = "S0OPS0001"


# ------------------------------------------------------------------ signing and sending


def slack_signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 scheme: HMAC-SHA256 over `v0:{timestamp}:{body}` with the signing secret."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
    }


def ticket_id_of(body: str) -> str:
    """The ticket id a slash command body starts: the bot derives it from the same fields."""
    fields = dict(parse_qsl(body))
    return new_short_id(f"slack:{fields['team_id']}:{fields['channel_id']}:{fields['user_id']}:{fields['trigger_id']}")


@dataclass
class SlackUserAgent:
    """Sends what Slack sends when a person types a command, clicks a button or submits a modal."""

    http: httpx.AsyncClient
    fake: FakeSlack
    channel: str = CHANNEL

    async def post(self, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post("/slack/events", content=body, headers=headers or signed_headers(body))

    def command_body(self, text: str, user: str = REQUESTER, channel: str = "", trigger_id: str = "") -> str:
        trigger = trigger_id or f"trigger-{uuid.uuid4().hex}"
        channel = channel or self.channel
        return urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": TEAM_ID,
                "team_domain": "fake",
                "channel_id": channel,
                "channel_name": "tickets",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/agent-ticket",
                "text": text,
                "api_app_id": "A0FAKE",
                "response_url": self.fake.response_url(trigger),
                "trigger_id": trigger,
            }
        )

    async def command(self, text: str, user: str = REQUESTER, channel: str = "") -> SentCommand:
        trigger = f"trigger-{uuid.uuid4().hex}"
        channel = channel or self.channel
        body = self.command_body(text, user, channel, trigger)
        started = time.monotonic()
        response = await self.post(body)
        elapsed = time.monotonic() - started
        key = f"slack:{TEAM_ID}:{channel}:{user}:{trigger}"
        return SentCommand(response, elapsed, new_short_id(key), trigger, body)

    def interaction_body(self, payload: dict[str, Any]) -> str:
        return urlencode({"payload": json.dumps(payload)})

    async def click(
        self,
        action_id: str,
        value: str,
        user: str,
        *,
        channel: str = "",
        message_ts: str = "1.000001",
    ) -> httpx.Response:
        return await self.post(self.click_body(action_id, value, user, channel=channel, message_ts=message_ts))

    def click_body(
        self,
        action_id: str,
        value: str,
        user: str,
        *,
        channel: str = "",
        message_ts: str = "1.000001",
    ) -> str:
        """The signed-to-be form body of one button click, as Slack would deliver (and redeliver) it."""
        channel = channel or self.channel
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0FAKE",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel, "name": "tickets"},
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "response_url": self.fake.response_url(f"click-{uuid.uuid4().hex[:8]}"),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "action_ts": f"{time.time():.6f}",
                    "text": {"type": "plain_text", "text": "Approve"},
                }
            ],
        }
        return self.interaction_body(payload)

    async def submit_reject(self, metadata: str, user: str, reason: str, *, replan: bool = False) -> httpx.Response:
        ticked = [{"text": {"type": "plain_text", "text": "Ask for a new plan"}, "value": "replan"}] if replan else []
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
            "api_app_id": "A0FAKE",
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "view": {
                "id": "V000001",
                "type": "modal",
                "callback_id": REJECT_MODAL_CALLBACK_ID,
                "private_metadata": metadata,
                "state": {
                    "values": {
                        "reject_reason": {"reject_reason_input": {"type": "plain_text_input", "value": reason}},
                        "reject_replan": {"reject_replan_input": {"type": "checkboxes", "selected_options": ticked}},
                    }
                },
            },
        }
        return await self.post(self.interaction_body(payload))


@dataclass
class SentCommand:
    response: httpx.Response
    elapsed: float
    ticket_id: str
    trigger_id: str
    body: str

    @property
    def ack_text(self) -> str:
        if not self.response.content:
            return ""
        try:
            return str(self.response.json().get("text", ""))
        except ValueError:
            return self.response.text


# ------------------------------------------------------------------ the bot on a real server


def slack_endpoint_app(context: BotContext, **timing: float) -> Starlette:
    """Only `/slack/events`, its front door with the time limits a test sets."""
    settings = context.settings
    front_door = SlackFrontDoor(context.service, settings, bot_web_client(settings), **timing)
    return Starlette(routes=http_routes(context, front_door))


# ------------------------------------------------------------------ the workers


# ------------------------------------------------------------------ fixtures


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(usergroups={OPS_GROUP: [CAROL]}).start()
    yield fake
    await fake.stop()


def slack_settings(data_dir: Path, fake: FakeSlack) -> Settings:
    """Slack configured against the fake; approvers are two people and a user group."""
    return build_settings(
        data_dir,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        slack_escalation_channel=ESCALATION_CHANNEL,
        approvers=[ALICE, BOB, OPS_GROUP],
        public_url=PUBLIC_URL,
    )


@pytest.fixture
def settings(tmp_path: Path, fake_slack: FakeSlack) -> Settings:
    return slack_settings(tmp_path / "data", fake_slack)


@dataclass
class SlackWorld:
    settings: Settings
    databases: Databases
    fake: FakeSlack
    script: ScriptedActivities
    service: TicketService
    slack: SlackUserAgent
    env: WorkflowEnvironment
    stack: AsyncExitStack
    channel: str = CHANNEL

    # What belongs to this test: its channel, its tickets (worlds are shared by a module's tests).

    def messages(self) -> list[Message]:
        return self.fake.top_level(self.channel)

    def ephemeral_for(self, user: str) -> list[str]:
        return self.fake.ephemeral_for(user, self.channel)

    def ephemeral(self) -> list[dict[str, Any]]:
        return [item for item in self.fake.ephemeral if item["channel"] == self.channel]

    def views(self) -> list[dict[str, Any]]:
        return [view for view in self.fake.views if json.loads(view["private_metadata"])["channel"] == self.channel]

    def calls(self, method: str) -> list[SlackCall]:
        return [call for call in self.fake.calls_to(method) if call.args.get("channel") == self.channel]

    async def executions(self, ticket_id: str) -> int:
        """How many times the ticket's plan ran: its rows in the target DB's execution ledger."""
        query = select(func.count()).select_from(executions).where(executions.c.workflow_id == f"ticket-{ticket_id}")
        async with self.databases.target_sessions() as session:
            return int(await session.scalar(query) or 0)

    async def events(self, ticket_id: str) -> list[AuditEventRow]:
        """The ticket's audit log in the app DB, oldest first."""
        query = select(AuditEventRow).where(AuditEventRow.ticket_id == ticket_id).order_by(AuditEventRow.id)
        async with self.databases.app_sessions() as session:
            return list((await session.scalars(query)).all())

    async def result(self, ticket_id: str) -> TicketOutcome:
        """The outcome, once the workflow exists (a start slower than the ack budget lands after the ack)."""

        async def started_then_result() -> TicketOutcome:
            while True:
                try:
                    return await self.service.result(ticket_id)
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(started_then_result(), timeout=30)

    async def status(self, ticket_id: str) -> TicketStatus:
        return await self.service.status(ticket_id)

    async def wait_for_status(
        self, ticket_id: str, condition: Callable[[TicketStatus], bool], what: str = "status"
    ) -> TicketStatus:
        return await wait_for_status(self.service, ticket_id, condition, what)

    async def awaiting_approval(self, ticket_id: str) -> TicketStatus:
        return await self.wait_for_status(ticket_id, lambda s: s.pending_approval, "awaiting approval")

    async def ticket_message_with_buttons(self, ticket_id: str) -> tuple[ButtonValue, str]:
        """The button value and ts of the ticket's message once its buttons are showing."""

        def with_approve_button(message: Message) -> bool:
            return f"T-{ticket_id}" in message.text and APPROVE_ACTION_ID in message.action_ids

        message = await self.fake.wait_for(
            lambda: next(filter(with_approve_button, self.fake.top_level()), None), what="the approval buttons"
        )
        value = self.button_value(message)
        assert value is not None
        return value, message.ts

    @staticmethod
    def button_value(message: Message) -> ButtonValue | None:
        """What the message's Approve button carries, if it has one."""
        for block in message.blocks:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element.get("action_id") == APPROVE_ACTION_ID:
                    return ButtonValue.decode(element["value"])
        return None


async def open_world(
    stack: AsyncExitStack,
    env: WorkflowEnvironment,
    settings: Settings,
    databases: Databases,
    fake: FakeSlack,
    bot_client: Client | None = None,
    timing: dict[str, float] | None = None,
    **script: Any,
) -> SlackWorld:
    """Workers on a queue of their own, the bot on a real server; closed with `stack`.

    `timing` sets the front door's time limits (`ack_budget`, `start_timeout`); the bot is then
    served as its Slack endpoint alone.
    """
    queue = f"slack-{uuid.uuid4().hex[:10]}"
    scripted = ScriptedActivities(**script)
    activities = with_activities(build_activity_set(settings, databases), scripted.plan_ticket)
    stack.push_async_callback(activities.close)
    for worker in build_workers(env.client, activities, task_queue=queue):
        await stack.enter_async_context(worker)
    key = settings.signing_key
    real_service = TicketService(env.client, databases.app_sessions, task_queue=queue, signing_key=key)
    bot_service = (
        TicketService(bot_client, databases.app_sessions, task_queue=queue, signing_key=key)
        if bot_client
        else real_service
    )
    context = BotContext(settings=settings, service=bot_service, databases=databases)
    app = slack_endpoint_app(context, **timing) if timing else create_app(context)
    base_url = await stack.enter_async_context(serve(app))
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
    return SlackWorld(settings, databases, fake, scripted, real_service, SlackUserAgent(http, fake), env, stack)


@pytest.fixture
async def make_world(
    local_env: WorkflowEnvironment, settings: Settings, databases: Databases, fake_slack: FakeSlack
) -> AsyncIterator[Callable[..., Awaitable[SlackWorld]]]:
    """Build a world of this test's own; `bot_client` gives the bot its own Temporal client."""
    async with AsyncExitStack() as stack:

        async def build(
            bot_client: Client | None = None, timing: dict[str, float] | None = None, **script: Any
        ) -> SlackWorld:
            return await open_world(stack, local_env, settings, databases, fake_slack, bot_client, timing, **script)

        yield build


@pytest.fixture
def world(shared_world: SlackWorld) -> SlackWorld:
    """The module's world seen through a channel of this test's own, with the script reset."""
    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    shared_world.fake.channels.add(channel)
    shared_world.script.plan = UPGRADE_PLAN.model_copy(deep=True)
    return replace(shared_world, channel=channel, slack=replace(shared_world.slack, channel=channel))


@pytest.fixture(scope="module")
async def shared_world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SlackWorld]:
    """One world for a module's tests that only look at their own tickets and calls (starting it costs ~1 s)."""
    async with AsyncExitStack() as stack:
        fake = await FakeSlack(usergroups={OPS_GROUP: [CAROL]}).start()
        stack.push_async_callback(fake.stop)
        settings = slack_settings(tmp_path_factory.mktemp("slack") / "data", fake)
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)
        await init_databases(databases, settings)
        yield await open_world(stack, local_env, settings, databases, fake)
