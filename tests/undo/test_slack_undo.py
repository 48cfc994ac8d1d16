"""Undo from Slack, end to end: a signed click on a done ticket's Undo button starts its revert.

Everything is real but Slack: the bot's ASGI app on 127.0.0.1 (Bolt checks every signature),
the workers with the real activities and SQLite databases on the session's Temporal dev
server, and the real Slack notifier and `slack_sdk` clients talking to the fake Slack Web API.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from bot.app import create_app
from bot.context import BotContext
from cli.render import status_view
from core.demo import demo_rows, invoices
from core.models import OutcomeStatus
from core.schema import AuditEventRow
from rendering.slack_ids import APPROVE_ACTION_ID, UNDO_ACTION_ID, ButtonValue
from service.tickets import reverted_by
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack, Message
from tests.pipeline import Pipeline, running_pipeline
from tests.slack.conftest import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    PUBLIC_URL,
    REQUESTER,
    SIGNING_SECRET,
    SlackUserAgent,
    serve,
    signed_headers,
)
from tests.support import build_settings

REVERT_REPLY = re.compile(r"(T-\w+) will revert (T-\w+); it needs (\d+) approval")


@dataclass
class UndoWorld:
    pipeline: Pipeline
    fake: FakeSlack
    slack: SlackUserAgent

    async def message_of(self, ticket: str, action_id: str) -> tuple[Message, str]:
        """The ticket's channel message once it shows the button `action_id`, and that button's value."""

        def found() -> tuple[Message, str] | None:
            for message in self.fake.top_level(CHANNEL):
                if f"T-{ticket}" in message.text and (value := button(message, action_id)) is not None:
                    return message, value
            return None

        result: tuple[Message, str] = await self.fake.wait_for(found, within=30, what=f"{action_id} on T-{ticket}")
        return result

    async def answer_to(self, user: str, pattern: str, seen: int = 0) -> str:
        """The first ephemeral answer to `user` after the first `seen` that contains `pattern`."""
        answers = await self.fake.wait_for(
            lambda: [text for text in self.fake.ephemeral_for(user, CHANNEL)[seen:] if pattern in text],
            within=30,
            what=f"an answer to {user} saying {pattern!r}",
        )
        return str(answers[0])

    async def invoice(self, invoice_id: object) -> dict[str, Any]:
        async with self.pipeline.databases.target_sessions() as session:
            row = (await session.execute(select(invoices).where(invoices.c.id == invoice_id))).mappings().one()
        return dict(row)


def button(message: Message, action_id: str) -> str | None:
    for block in message.blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    return None


@pytest.fixture
async def undo_world(tmp_path: Path, local_env: WorkflowEnvironment) -> AsyncIterator[UndoWorld]:
    async with AsyncExitStack() as stack:
        fake = await FakeSlack().start()
        stack.push_async_callback(fake.stop)
        settings = build_settings(
            tmp_path / "data",
            f"undo-slack-{uuid.uuid4().hex[:8]}",
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.api_url,
            approvers=[ALICE, BOB, CAROL],
            public_url=PUBLIC_URL,
        )
        pipeline = await stack.enter_async_context(running_pipeline(local_env.client, settings))
        context = BotContext(settings=settings, service=pipeline.service, databases=pipeline.databases)
        base_url = await stack.enter_async_context(serve(create_app(context)))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=30))
        yield UndoWorld(pipeline, fake, SlackUserAgent(http, fake))


async def test_a_signed_undo_click_reverts_the_change_once(undo_world: UndoWorld) -> None:
    world, slack = undo_world, undo_world.slack
    unpaid = next(row for row in demo_rows()["invoices"] if row["status"] != "paid")
    before = await world.invoice(unpaid["id"])

    # Filed and approved in Slack; once done, its message offers Undo.
    sent = await slack.command(f"mark invoice {unpaid['id']} as paid")
    original = sent.ticket_id
    _, approve = await world.message_of(original, APPROVE_ACTION_ID)
    await slack.click(APPROVE_ACTION_ID, approve, ALICE)
    assert (await world.pipeline.service.result(original)).status is OutcomeStatus.DONE
    assert (await world.invoice(unpaid["id"])) != before
    done, undo = await world.message_of(original, UNDO_ACTION_ID)
    assert "Done" in done.everything and "Can be undone until" in done.everything

    # A click whose signature is not Slack's starts nothing.
    forged = slack.click_body(UNDO_ACTION_ID, undo, REQUESTER, message_ts=done.ts)
    refused = await slack.post(forged, signed_headers(forged, secret="not-the-signing-secret"))
    assert refused.status_code == 401

    # The requester clicks Undo: a revert ticket starts, and they hear what it needs.
    body = slack.click_body(UNDO_ACTION_ID, undo, REQUESTER, message_ts=done.ts)
    clicked = await slack.post(body, signed_headers(body))
    assert clicked.status_code == 200
    answer = await world.answer_to(REQUESTER, "will revert")
    match = REVERT_REPLY.search(answer)
    assert match is not None, answer
    revert_label, reverted_label, needed = match.groups()
    assert reverted_label == f"T-{original}" and int(needed) >= 1
    revert = revert_label.removeprefix("T-")
    status = await world.pipeline.service.status(revert)
    assert status.request.requester == REQUESTER and status.request.channel == CHANNEL
    assert status.request.reverts is not None and status.request.reverts.workflow_id == f"ticket-{original}"

    # Its message, in the same channel, says what it reverts; another approver approves it.
    message, approve_revert = await world.message_of(revert, APPROVE_ACTION_ID)
    assert f"reverts *T-{original}*" in message.everything
    assert ButtonValue.decode(approve_revert).workflow_id == f"ticket-{revert}"
    await slack.click(APPROVE_ACTION_ID, approve_revert, BOB)
    outcome = await world.pipeline.service.result(revert)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert await world.invoice(unpaid["id"]) == before  # every column as it was

    # A second click on the original's Undo starts nothing, and says why.
    seen = len(world.fake.ephemeral_for(CAROL, CHANNEL))
    again = slack.click_body(UNDO_ACTION_ID, undo, CAROL, message_ts=done.ts)
    await slack.post(again, signed_headers(again))
    refusal = await world.answer_to(CAROL, "Nothing to undo", seen)
    assert f"T-{original} was already reverted by {revert_label}" in refusal, refusal
    assert await world.invoice(unpaid["id"]) == before

    # `agent-ticket show` of the original says who reverted it, from its audit trail.
    trail = await _trail_with_revert(world, original)
    assert reverted_by(trail) == f"ticket-{revert}"
    console = Console(width=160, record=True, color_system=None)
    console.print(status_view(await world.pipeline.service.status(original), reverted_by(trail)))
    assert f"reverted by {revert_label}" in console.export_text()


async def _trail_with_revert(world: UndoWorld, ticket: str) -> list[AuditEventRow]:
    """The original's audit trail once the revert's note on it has been written."""
    service = world.pipeline.service
    for _ in range(200):
        trail = await service.audit_trail(ticket)
        if reverted_by(trail) is not None:
            return trail
        await asyncio.sleep(0.05)
    raise AssertionError(f"T-{ticket}'s record never said it was reverted")
