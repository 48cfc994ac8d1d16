"""What the bot does with each kind of request Slack (or anyone else) sends to `/slack/events`.

Signatures and timestamps are checked before anything happens; payloads that don't fit are
refused with 400; `/agent-ticket` is acknowledged within Slack's 3 seconds whatever state
Temporal is in, and the ack says "received" only once Temporal has the ticket's workflow.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.models import MAX_TICKET_TEXT, OutcomeStatus, Risk
from core.names import workflow_id_for
from core.schema import TicketRow
from rendering.slack_ids import APPROVE_ACTION_ID
from service.tickets import TicketNotFound
from tests.slack.conftest import (
    ALICE,
    CHANNEL,
    REQUESTER,
    SlackWorld,
    signed_headers,
    ticket_id_of,
)

MakeWorld = Callable[..., Awaitable[SlackWorld]]


async def assert_not_started(world: SlackWorld, ticket_id: str) -> None:
    await asyncio.sleep(0.3)  # listeners run after the ack; give a wrongly started one time to show
    with pytest.raises(TicketNotFound):
        await world.service.status(ticket_id)


# ------------------------------------------------------------------ signatures and payloads


async def test_forged_signature_is_401_and_starts_nothing(world: SlackWorld) -> None:
    body = world.slack.command_body("delete every customer", trigger_id="trigger-forged")
    calls = len(world.fake.calls)
    response = await world.slack.post(body, signed_headers(body, secret="not-the-signing-secret"))

    assert response.status_code == 401
    await assert_not_started(world, ticket_id_of(body))
    assert world.fake.calls[calls:] == [] and "trigger-forged" not in world.fake.responses


async def test_timestamp_older_than_five_minutes_is_401(world: SlackWorld) -> None:
    body = world.slack.command_body("upgrade acme-corp", trigger_id="trigger-replayed")
    response = await world.slack.post(body, signed_headers(body, timestamp=int(time.time()) - 5 * 60 - 30))

    assert response.status_code == 401
    await assert_not_started(world, ticket_id_of(body))


async def test_unsigned_request_is_401(world: SlackWorld) -> None:
    body = world.slack.command_body("upgrade acme-corp", trigger_id="trigger-unsigned")
    response = await world.slack.http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 401
    await assert_not_started(world, ticket_id_of(body))


@pytest.mark.parametrize(
    "body",
    [
        "payload=%7Bnot-json",
        "payload=%5B1%2C2%5D",  # JSON, but a list
        '{"type": "event_callback", "event": {"type": "app_mention", "text": "hi"}}',  # an event we don't take
        "payload=" + json.dumps({"type": "shortcut", "callback_id": "unknown", "user": {"id": "U1"}}),
    ],
    ids=["not-json", "list", "unknown-event", "unknown-shortcut"],
)
async def test_malformed_or_unknown_signed_payload_is_400(world: SlackWorld, body: str) -> None:
    posts = len(world.fake.calls_to("chat.postMessage"))
    response = await world.slack.post(body)
    assert response.status_code == 400
    await asyncio.sleep(0.2)
    assert len(world.fake.calls_to("chat.postMessage")) == posts


async def test_malformed_unsigned_payload_is_401_not_400(world: SlackWorld) -> None:
    response = await world.slack.post("payload=%7Bnot-json", signed_headers("something else"))
    assert response.status_code == 401


async def test_command_missing_fields_or_for_another_command_is_400(world: SlackWorld) -> None:
    body = world.slack.command_body("upgrade acme-corp", trigger_id="trigger-partial")
    without_user = "&".join(part for part in body.split("&") if not part.startswith("user_id="))
    other = body.replace("command=%2Fagent-ticket", "command=%2Fsomething-else")

    assert (await world.slack.post(without_user)).status_code == 400
    assert (await world.slack.post(other)).status_code == 400
    await assert_not_started(world, ticket_id_of(body))


async def test_button_with_a_tampered_or_unknown_value_is_400_and_signals_nothing(world: SlackWorld) -> None:
    world.script.risk, world.script.required_approvals = Risk.HIGH, 1
    sent = await world.slack.command("upgrade acme-corp to the pro plan")
    value, ts = await world.ticket_message_with_buttons(sent.ticket_id)
    answers = len(world.fake.ephemeral)

    tampered = await world.slack.click(APPROVE_ACTION_ID, '{"workflow_id": "ticket-x"}', ALICE, message_ts=ts)
    unknown = await world.slack.click("ticket_delete_everything", value.encode(), ALICE, message_ts=ts)

    assert tampered.status_code == 400 and unknown.status_code == 400
    await asyncio.sleep(0.3)
    status = await world.status(sent.ticket_id)
    assert status.pending_approval and status.decisions == []
    assert len(world.fake.ephemeral) == answers


# ------------------------------------------------------------------ /agent-ticket answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Tell me what you need"),
        ("   ", "Tell me what you need"),
        ("x" * (MAX_TICKET_TEXT + 1), f"the limit is {MAX_TICKET_TEXT}"),
        ("upgrade acme\u200b-corp", "invisible formatting character"),
        ("help", "Here's what I can do"),
        ("status", "Which ticket?"),
    ],
    ids=["empty", "blank", "too-long", "hidden-character", "help", "status-without-ticket"],
)
async def test_help_and_unusable_text_are_answered_in_the_ack_and_start_nothing(
    world: SlackWorld, text: str, expected: str
) -> None:
    sent = await world.slack.command(text)

    assert sent.response.status_code == 200 and sent.elapsed < 1.0
    assert sent.response.json()["response_type"] == "ephemeral"
    assert expected in sent.ack_text and "/agent-ticket <what you need>" in sent.ack_text
    await assert_not_started(world, sent.ticket_id)


async def test_status_shows_the_ticket_to_the_asker_only(world: SlackWorld) -> None:
    world.script.risk, world.script.required_approvals = Risk.HIGH, 1  # it waits, so its status is stable
    filed = await world.slack.command("upgrade acme-corp to the pro plan")
    await world.ticket_message_with_buttons(filed.ticket_id)

    asked = await world.slack.command(f"status T-{filed.ticket_id}", user=ALICE)
    missing = await world.slack.command("status T-0123456789", user=ALICE)

    assert asked.elapsed < 1.0 and asked.ack_text == ""
    [answer] = await world.fake.wait_for(lambda: world.fake.responses.get(asked.trigger_id), what="status answer")
    assert answer["response_type"] == "ephemeral"
    assert f"T-{filed.ticket_id}" in answer["text"] and "Awaiting approval" in json.dumps(answer["blocks"])
    assert all(block["type"] != "actions" for block in answer["blocks"])  # buttons live in the channel only
    [unknown] = await world.fake.wait_for(lambda: world.fake.responses.get(missing.trigger_id), what="not found")
    assert "There is no ticket T-0123456789" in unknown["text"]


async def test_pending_lists_the_tickets_waiting_for_approval(world: SlackWorld) -> None:
    now = datetime.now(UTC)
    async with world.databases.app_sessions() as session, session.begin():
        for ticket_id, status, risk in [("aaaaaaaaaa", "awaiting_approval", "high"), ("bbbbbbbbbb", "done", "low")]:
            row = TicketRow(ticket_id=ticket_id, workflow_id=f"ticket-{ticket_id}", requester=REQUESTER, source="slack")
            row.channel, row.text, row.risk = CHANNEL, f"ticket {ticket_id}", risk
            row.stage = row.status = status
            row.created_at = row.updated_at = now
            session.add(row)

    sent = await world.slack.command("pending")

    [answer] = await world.fake.wait_for(lambda: world.fake.responses.get(sent.trigger_id), what="pending answer")
    listed = json.dumps(answer["blocks"])
    assert "T-aaaaaaaaaa" in listed and "T-bbbbbbbbbb" not in listed
    assert "1 ticket waiting for approval" in listed


# ------------------------------------------------------------------ Temporal slow or down


@asynccontextmanager
async def slow_tcp_proxy(target: str, delay: float) -> AsyncIterator[str]:
    """Forward TCP to `target`, holding each new connection back for `delay` seconds.

    If `target` refuses, the client's connection is closed then, as by a server that went away.
    """
    host, port = target.rsplit(":", 1)
    tasks: set[asyncio.Task[None]] = set()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            return
        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(lambda _: writer.close())  # refused, cancelled or done: hang up on the client

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()


async def bot_client_at(address: str) -> Client:
    return await Client.connect(address, lazy=True, data_converter=pydantic_data_converter)


def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_a_received_ack_means_the_workflow_already_exists(
    make_world: MakeWorld, local_env: WorkflowEnvironment
) -> None:
    # Temporal slow, but within the ack budget: an ack sent before the start would come first.
    async with slow_tcp_proxy(temporal_address(local_env), delay=0.3) as address:
        world = await make_world(bot_client=await bot_client_at(address))
        sent = await world.slack.command("upgrade acme-corp to the pro plan")
        description = await world.service.handle(sent.ticket_id).describe()  # at once, on a client of its own

        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        assert f"T-{sent.ticket_id} received" in sent.ack_text
        assert description.id == workflow_id_for(sent.ticket_id)
        outcome = await world.result(sent.ticket_id)
    assert outcome.status is OutcomeStatus.DONE
    assert sent.trigger_id not in world.fake.responses  # the ack said it all


async def test_ack_is_fast_while_temporal_is_down_and_no_ticket_is_half_started(make_world: MakeWorld) -> None:
    world = await make_world(bot_client=await bot_client_at("127.0.0.1:1"))

    sent = await world.slack.command("upgrade acme-corp to the pro plan")

    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    assert sent.response.json()["response_type"] == "ephemeral"
    assert "not answering" in sent.ack_text and "*not* started" in sent.ack_text
    assert "received" not in sent.ack_text
    await assert_not_started(world, sent.ticket_id)
    assert sent.trigger_id not in world.fake.responses  # the ack said it all
    assert world.fake.calls_to("chat.postMessage") == []


async def test_ack_is_fast_while_temporal_is_slow_and_the_ticket_still_starts(
    make_world: MakeWorld, local_env: WorkflowEnvironment
) -> None:
    async with slow_tcp_proxy(temporal_address(local_env), delay=1.5) as address:
        world = await make_world(bot_client=await bot_client_at(address), timing={"ack_budget": 0.2})
        sent = await world.slack.command("upgrade acme-corp to the pro plan")

        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        assert "slow to answer" in sent.ack_text and "received" not in sent.ack_text
        [answer] = await world.fake.wait_for(lambda: world.fake.responses.get(sent.trigger_id), what="the news")
        await world.service.handle(sent.ticket_id).describe()  # started by the time it is said
        outcome = await world.result(sent.ticket_id)
    assert answer["response_type"] == "ephemeral"
    assert f"T-{sent.ticket_id} started after all" in answer["text"]
    assert outcome.status is OutcomeStatus.DONE


@pytest.mark.parametrize(
    ("temporal_gone", "start_timeout", "expected"),
    [(False, 1.0, "can't confirm"), (True, 10.0, "*not* started")],
    ids=["no-answer-within-the-start-timeout", "refused-after-the-ack"],
)
async def test_a_start_failing_after_the_ack_is_reported_through_the_response_url(
    make_world: MakeWorld, local_env: WorkflowEnvironment, temporal_gone: bool, start_timeout: float, expected: str
) -> None:
    # Held back past the ack budget; then held past the start time-out, or refused.
    target = "127.0.0.1:1" if temporal_gone else temporal_address(local_env)
    async with slow_tcp_proxy(target, delay=1.0 if temporal_gone else 30.0) as address:
        timing = {"ack_budget": 0.2, "start_timeout": start_timeout}
        world = await make_world(bot_client=await bot_client_at(address), timing=timing)
        sent = await world.slack.command("upgrade acme-corp to the pro plan")
        [answer] = await world.fake.wait_for(lambda: world.fake.responses.get(sent.trigger_id), what="the news")

    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    assert "slow to answer" in sent.ack_text and "received" not in sent.ack_text
    assert answer["response_type"] == "ephemeral"
    assert "not answering" in answer["text"] and expected in answer["text"]
    await assert_not_started(world, sent.ticket_id)
    assert world.fake.calls_to("chat.postMessage") == []
