"""What each Slack request does, and what its ack says, kept apart from Bolt.

Listeners parse and make one call here, which returns the ack's text and, where there is
slow work, what to run once the ack is sent. A new ticket's workflow is started before the
ack (within `ACK_BUDGET_SECONDS`), so "received" is said only of a ticket Temporal has.
This class talks to Temporal through `TicketService` (which checks the approval rules before
it signals) and answers people ephemerally: slash commands through their `response_url`,
which works in any channel, and button clicks with `chat.postEphemeral` in the ticket's
channel. Nothing here keeps ticket state: the workflow's `status` query is the only copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from bot.slack.actions import ButtonClick, RejectSubmission, UndoClick
from bot.slack.commands import CommandKind, ParsedCommand, SlashCommand, invalid_reply
from core.approval import refusal_preview
from core.models import Decision, DecisionSource, Stage, TicketRequest, TicketSource, TicketStatus
from core.names import short_id_from, ticket_label
from core.settings import Settings
from rendering.slack import (
    SlackMessage,
    escape,
    pending_reply,
    reject_modal,
    status_reply,
    truncate,
    undo_reply,
)
from rendering.slack_ids import ButtonValue, RejectModalMetadata
from service.tickets import CannotRevert, StartedTicket, TicketNotFound, TicketService, new_short_id

logger = logging.getLogger(__name__)

# Slack shows the person an error if the ack takes over 3 s (and Bolt stops waiting for it then);
# Temporal gets 2 s of that to accept a new ticket, the rest is for Bolt and the network.
ACK_BUDGET_SECONDS = 2.0
# Temporal is normally answered in milliseconds; past this the person hears why, not silence.
START_TIMEOUT_SECONDS = 10.0
TEMPORAL_DOWN = "Temporal, which runs tickets, is not answering"
# How long the answer to an Undo click waits for the revert ticket's verdict (approvals needed, or refused).
UNDO_VERDICT_SECONDS = 20.0
VERDICT_POLL_SECONDS = 0.1


class StartOutcome(Enum):
    STARTED = "started"  # or it already existed: a redelivery of the same command
    REFUSED = "refused"
    NO_ANSWER = "no answer"


@dataclass(frozen=True)
class CommandAnswer:
    """What a slash command's ack says (empty: a bare ack), and the slow half to run once it is sent."""

    text: str = ""
    follow_up: Callable[[], Awaitable[None]] | None = None


class SlackFrontDoor:
    def __init__(
        self,
        service: TicketService,
        settings: Settings,
        web_client: AsyncWebClient,
        *,
        ack_budget: float = ACK_BUDGET_SECONDS,
        start_timeout: float = START_TIMEOUT_SECONDS,
        undo_verdict_timeout: float = UNDO_VERDICT_SECONDS,
    ) -> None:
        self._service = service
        self._settings = settings
        self._web = web_client
        self._ack_budget = ack_budget
        self._start_timeout = start_timeout
        self._undo_verdict_timeout = undo_verdict_timeout

    # ------------------------------------------------------------ /agent-ticket

    async def answer_command(
        self, command: SlashCommand, parsed: ParsedCommand, *, redelivery: bool = False
    ) -> CommandAnswer:
        """The ack for a slash command, ready within the ack budget, and what to do after it."""
        if parsed.kind is CommandKind.FILE:
            return await self._file_ticket(command, parsed.argument, redelivery=redelivery)
        if parsed.kind is CommandKind.STATUS:
            return CommandAnswer(follow_up=partial(self._show_status, command, parsed.argument))
        if parsed.kind is CommandKind.PENDING:
            return CommandAnswer(follow_up=partial(self._show_pending, command))
        if parsed.kind is CommandKind.HELP:
            return CommandAnswer(invalid_reply(ParsedCommand(CommandKind.HELP, "Here's what I can do:")))
        return CommandAnswer(invalid_reply(parsed))

    async def _file_ticket(self, command: SlashCommand, text: str, *, redelivery: bool) -> CommandAnswer:
        """Start the workflow before the ack, so that "received" is only said of a ticket Temporal has."""
        label = ticket_label(new_short_id(command.dedupe_key()))
        start = asyncio.create_task(self._start(command, text, label, redelivery=redelivery))
        await asyncio.wait({start}, timeout=self._ack_budget)  # leaves the start running if the budget runs out
        if start.done():
            return CommandAnswer(self._start_reply(start.result(), label, text))
        logger.info(
            "%s: Temporal has not answered the start within %.1fs; acking, still waiting", label, self._ack_budget
        )
        return CommandAnswer(
            f"Temporal, which runs tickets, is slow to answer, so {label} is not filed yet. "
            "I'll tell you here in a moment whether it started.",
            follow_up=partial(self._confirm_late_start, command, label, text, start),
        )

    async def _start(self, command: SlashCommand, text: str, label: str, *, redelivery: bool) -> StartOutcome:
        """Start the ticket's workflow (or find it started), giving up after the start time-out."""
        request = TicketRequest(
            text=text,
            requester=command.user_id,
            source=TicketSource.SLACK,
            channel=command.channel_id,
            approval=self._settings.approval_settings(),
        )
        try:
            async with asyncio.timeout(self._start_timeout):
                started = await self._service.start(request, dedupe_key=command.dedupe_key())
        except TimeoutError:
            logger.warning("%s: Temporal did not answer the start within %.0fs", label, self._start_timeout)
            return StartOutcome.NO_ANSWER
        except (RPCError, RuntimeError) as error:
            logger.warning("%s: could not start: %s", label, error)
            return StartOutcome.REFUSED
        if started.already_existed:
            logger.info("%s: the same command again (Slack redelivery: %s); nothing new started", label, redelivery)
        else:
            logger.info("%s: started %s for %s in %s", label, started.workflow_id, command.user_id, command.channel_id)
        return StartOutcome.STARTED

    async def _confirm_late_start(
        self, command: SlashCommand, label: str, text: str, start: asyncio.Task[StartOutcome]
    ) -> None:
        """After a "slow to answer" ack: tell the person how the start they were promised news of ended."""
        reply = self._start_reply(await start, label, text, late=True)
        await self._respond(command, SlackMessage(reply))

    def _start_reply(self, outcome: StartOutcome, label: str, text: str, *, late: bool = False) -> str:
        """What the person is told about the start: in the ack, or through `response_url` when it came late."""
        if outcome is StartOutcome.STARTED:
            news = "started after all" if late else "received"
            return f"{label} {news}: _{escape(truncate(text, 300))}_\nI'll post its progress in this channel."
        if outcome is StartOutcome.NO_ANSWER:
            return (
                f":warning: {TEMPORAL_DOWN} (no answer in {self._start_timeout:.0f}s), so I can't confirm that "
                f"{label} started. Check `/agent-ticket status {label}` in a minute before filing it again."
            )
        return (
            f":warning: {TEMPORAL_DOWN}, so {label} was *not* started and nothing will change. "
            "Please try again in a few minutes."
        )

    async def _show_status(self, command: SlashCommand, reference: str) -> None:
        label = ticket_label(short_id_from(reference))
        try:
            status = await self._service.status(reference)
        except TicketNotFound:
            await self._respond(command, SlackMessage(f"There is no ticket {label}."))
            return
        except RPCError as error:
            logger.warning("%s: status query failed: %s", label, error)
            await self._respond(command, SlackMessage(f":warning: {await self._service.why_unanswered(reference)}"))
            return
        await self._respond(command, status_reply(status, self._settings.public_url))

    async def _show_pending(self, command: SlashCommand) -> None:
        try:
            waiting = await self._service.list_tickets(status=Stage.AWAITING_APPROVAL.value)
        except SQLAlchemyError as error:
            logger.warning("pending tickets could not be read: %s", error)
            await self._respond(command, SlackMessage(":warning: The ticket list is unavailable; try again soon."))
            return
        await self._respond(command, pending_reply(waiting, self._settings.public_url))

    async def _respond(self, command: SlashCommand, message: SlackMessage) -> None:
        """Answer the person who typed the command, only them, wherever they typed it."""
        try:
            await AsyncWebhookClient(command.response_url).send(
                **message.payload(), response_type="ephemeral", replace_original=False
            )
        except Exception:  # an answer that can't be delivered must not hide the log line
            logger.exception("could not answer %s via response_url", command.user_id)

    # ------------------------------------------------------------ buttons and the reject modal

    async def approve(self, click: ButtonClick) -> None:
        value = click.value
        decision = self._decision(value, click.user.id, approve=True)
        await self._decide(value, decision, channel=click.channel_id)

    async def open_reject_modal(self, click: ButtonClick) -> None:
        """Ask for a reason, unless the clicker could not reject anyway (then say why at once)."""
        value = click.value
        user = click.user.id
        label = ticket_label(short_id_from(value.workflow_id))
        try:
            status = await self._service.status(value.workflow_id)
        except TicketNotFound as missing:
            await self._tell(click.channel_id, user, f":no_entry_sign: {missing}")
            return
        except RPCError as error:
            logger.warning("%s: status query failed: %s", label, error)
            await self._tell(click.channel_id, user, f":warning: {TEMPORAL_DOWN}; nothing was sent. Try again.")
            return
        refusal = refusal_preview(status, self._decision(value, user, approve=False))
        if refusal is not None:  # the same rules as the workflow's, only so no modal opens in vain
            await self._tell(click.channel_id, user, f":no_entry_sign: You can't reject {label}: {refusal}.")
            return
        metadata = RejectModalMetadata(value=value, channel=click.channel_id)
        await self._web.views_open(trigger_id=click.trigger_id, view=reject_modal(status, metadata))
        logger.info("%s: reject modal opened for %s", label, user)

    async def reject(self, submission: RejectSubmission) -> None:
        metadata = submission.metadata
        decision = self._decision(
            metadata.value, submission.user.id, approve=False, comment=submission.reason, replan=submission.replan
        )
        await self._decide(metadata.value, decision, channel=metadata.channel)

    @staticmethod
    def _decision(value: ButtonValue, user: str, *, approve: bool, comment: str = "", replan: bool = False) -> Decision:
        return Decision(
            approve=approve,
            decider=user,
            source=DecisionSource.SLACK,
            request_id=value.request_id,
            plan_hash=value.plan_hash,
            comment=comment,
            replan=replan,
        )

    async def _decide(self, value: ButtonValue, decision: Decision, *, channel: str | None) -> None:
        """Hand the decision to the workflow, then tell the clicker its verdict."""
        label = ticket_label(short_id_from(value.workflow_id))
        user = decision.decider
        try:
            record = await self._service.decide(value.workflow_id, decision)
        except TicketNotFound as missing:
            await self._tell(channel, user, f":no_entry_sign: {missing}")
            return
        except RPCError as error:
            logger.warning("%s: decision by %s not delivered: %s", label, user, error)
            await self._tell(channel, user, f":warning: {TEMPORAL_DOWN}; your decision was not delivered. Try again.")
            return
        verb = "approval" if decision.approve else "rejection"
        if record is None:
            await self._tell(channel, user, f"Your {verb} of {label} was sent; it is judged when a worker is back.")
            return
        logger.info("%s: %s by %s: %s", label, verb, user, "counted" if record.accepted else record.reason)
        if not record.accepted:
            await self._tell(channel, user, f":no_entry_sign: Your {verb} of {label} was not counted: {record.reason}.")
        elif decision.approve:
            await self._tell(
                channel, user, f":white_check_mark: You approved {label}.{await self._still_needed(value)}"
            )
        elif decision.replan:
            await self._tell(channel, user, f"You sent {label} back for a new plan: {escape(decision.comment)}")
        else:
            await self._tell(channel, user, f"You rejected {label}: {escape(decision.comment)}")

    # ------------------------------------------------------------ Undo

    async def undo(self, click: UndoClick) -> None:
        """Start the revert of a done ticket as the clicker, then tell them its verdict or why not.

        Whether the change may still be reverted (already reverted, past the window, rows changed
        since) is the revert workflow's to judge; the clicker hears what it decided.
        """
        original = ticket_label(short_id_from(click.value.workflow_id))
        user, channel = click.user.id, click.channel_id
        try:
            started = await self._service.revert(
                click.value.workflow_id,
                user,
                approval=self._settings.approval_settings(),
                source=TicketSource.SLACK,
                dedupe_key=f"undo:{click.value.workflow_id}:{user}:{click.trigger_id}",  # a replayed click: one revert
            )
        except (CannotRevert, TicketNotFound) as refused:
            await self._tell(channel, user, f":no_entry_sign: Nothing to undo: {escape(str(refused))}.")
            return
        except RPCError as error:
            logger.warning("%s: undo by %s not started: %s", original, user, error)
            await self._tell(channel, user, f":warning: {TEMPORAL_DOWN}; nothing was undone. Try again.")
            return
        logger.info("%s: undo by %s started %s", original, user, started.label)
        await self._tell(channel, user, undo_reply(original, started.label, await self._verdict(started)))

    async def _verdict(self, started: StartedTicket) -> TicketStatus | None:
        """The revert ticket's status once it waits for approval or has ended; None if that takes too long."""
        deadline = time.monotonic() + self._undo_verdict_timeout
        while time.monotonic() < deadline:
            try:
                status = await self._service.status(started.workflow_id)
            except (RPCError, TicketNotFound):
                status = None
            if status is not None and (status.outcome is not None or status.pending_approval):
                return status
            await asyncio.sleep(VERDICT_POLL_SECONDS)
        return None

    async def _still_needed(self, value: ButtonValue) -> str:
        """ " It still needs N more approval(s)." while the request stays open after a counted approval."""
        try:
            status = await self._service.status(value.workflow_id)
        except (RPCError, TicketNotFound):
            return ""
        if status.approval is None or status.approval.request_id != value.request_id:
            return ""
        remaining = status.approvals_needed
        return f" It still needs {remaining} more approval{'s' if remaining != 1 else ''}." if remaining > 0 else ""

    async def _tell(self, channel: str | None, user: str, text: str) -> None:
        """Only the clicker sees it; a failure is logged, never raised into Bolt."""
        if channel is None:
            logger.warning("no channel to answer %s in: %s", user, text)
            return
        try:
            await self._web.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as error:
            logger.warning("could not answer %s in %s: %s", user, channel, error.response.get("error"))
