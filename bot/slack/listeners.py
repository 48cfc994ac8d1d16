"""Bolt listeners: parse the payload into a model, make one call, ack within Slack's 3 seconds.

Clicks and modal submissions are acked first, then handled. A slash command is acked once the
front door knows what is true to say (a new ticket's workflow is started first, within the
front door's ack budget); its slow half, if any, runs after the ack.

Each listener is registered with a matcher that parses its payload, so a payload that does
not fit our models is left unhandled (the endpoint answers 400) instead of half-handled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest

from bot.slack.actions import ButtonClick, RejectSubmission, UndoClick
from bot.slack.commands import SlashCommand, parse_command_text
from bot.slack.front_door import SlackFrontDoor
from rendering.slack_ids import (
    APPROVE_ACTION_ID,
    COMMAND,
    DASHBOARD_ACTION_ID,
    REASON_BLOCK_ID,
    REJECT_ACTION_ID,
    REJECT_MODAL_CALLBACK_ID,
    UNDO_ACTION_ID,
)

Body = dict[str, Any]
REDELIVERY_HEADER = "x-slack-retry-num"


def parses_as(parse: Callable[[Body], object]) -> Callable[[Body], Awaitable[bool]]:
    """A Bolt matcher that accepts a request only if its body parses with `parse`."""

    async def matcher(body: Body) -> bool:
        try:
            parse(body)
        except ValueError:  # pydantic's ValidationError and json's JSONDecodeError included
            return False
        return True

    return matcher


def register_listeners(app: AsyncApp, front_door: SlackFrontDoor) -> None:
    @app.command(COMMAND, matchers=[parses_as(SlashCommand.model_validate)])
    async def on_command(ack: AsyncAck, body: Body, request: AsyncBoltRequest) -> None:
        command = SlashCommand.model_validate(body)
        parsed = parse_command_text(command.text)
        redelivery = bool(request.headers.get(REDELIVERY_HEADER))
        answer = await front_door.answer_command(command, parsed, redelivery=redelivery)  # within the ack budget
        await (ack(text=answer.text, response_type="ephemeral") if answer.text else ack())
        if answer.follow_up is not None:
            await answer.follow_up()

    @app.action(APPROVE_ACTION_ID, matchers=[parses_as(ButtonClick.parse)])
    async def on_approve(ack: AsyncAck, body: Body) -> None:
        await ack()
        await front_door.approve(ButtonClick.parse(body))

    @app.action(REJECT_ACTION_ID, matchers=[parses_as(ButtonClick.parse)])
    async def on_reject(ack: AsyncAck, body: Body) -> None:
        await ack()  # views.open must follow within 3 s of the click; the trigger id expires
        await front_door.open_reject_modal(ButtonClick.parse(body))

    @app.action(UNDO_ACTION_ID, matchers=[parses_as(UndoClick.parse)])
    async def on_undo(ack: AsyncAck, body: Body) -> None:
        await ack()  # starting the revert and hearing its verdict takes longer than Slack waits
        await front_door.undo(UndoClick.parse(body))

    @app.action(DASHBOARD_ACTION_ID)
    async def on_dashboard_link(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL, but still expects an ack

    @app.view(REJECT_MODAL_CALLBACK_ID, matchers=[parses_as(RejectSubmission.parse)])
    async def on_reject_submission(ack: AsyncAck, body: Body) -> None:
        submission = RejectSubmission.parse(body)
        if not submission.reason:
            await ack(response_action="errors", errors={REASON_BLOCK_ID: "Say why, so the requester knows."})
            return
        await ack()  # closes the modal
        await front_door.reject(submission)
