"""What each Slack request does once it is acknowledged, kept apart from Bolt.

Listeners ack, parse and make one call here. This class talks to Temporal through
`TicketService` (which checks the approval rules before it signals) and answers people
ephemerally: slash commands through their `response_url`, which works in any channel,
and button clicks with `chat.postEphemeral` in the ticket's channel. Nothing here keeps
ticket state: the workflow's `status` query is the only copy.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from bot.blocks import SlackMessage, escape, pending_reply, reject_modal, status_reply, truncate
from bot.slack.actions import ButtonClick, ButtonValue, RejectModalMetadata, RejectSubmission
from bot.slack.commands import CommandKind, ParsedCommand, SlashCommand, invalid_reply
from core.models import Decision, DecisionRecord, DecisionSource, Stage, TicketRequest, TicketSource, TicketStatus
from core.names import short_id_from, ticket_label
from core.settings import Settings
from core.tickets import DecisionRefused, TicketNotFound, TicketService, check_decision, new_short_id

logger = logging.getLogger(__name__)

# Temporal is normally answered in milliseconds; past this the person hears why, not silence.
START_TIMEOUT_SECONDS = 10.0
# How long to look for the workflow's verdict on a click before saying only "sent".
DECISION_WAIT_SECONDS = 3.0
TEMPORAL_DOWN = "Temporal, which runs tickets, is not answering"


class SlackFrontDoor:
    def __init__(
        self,
        service: TicketService,
        settings: Settings,
        web_client: AsyncWebClient,
        *,
        start_timeout: float = START_TIMEOUT_SECONDS,
        decision_wait: float = DECISION_WAIT_SECONDS,
    ) -> None:
        self._service = service
        self._settings = settings
        self._web = web_client
        self._start_timeout = start_timeout
        self._decision_wait = decision_wait

    # ------------------------------------------------------------ /agent-ticket

    @staticmethod
    def acknowledgement(command: SlashCommand, parsed: ParsedCommand) -> str:
        """The ephemeral text sent with the ack (empty for answers that need a lookup first)."""
        if parsed.kind is CommandKind.FILE:
            label = ticket_label(new_short_id(command.dedupe_key()))
            return (
                f"{label} received: _{escape(truncate(parsed.argument, 300))}_\nI'll post its progress in this channel."
            )
        if parsed.kind is CommandKind.INVALID:
            return invalid_reply(parsed)
        if parsed.kind is CommandKind.HELP:
            return invalid_reply(ParsedCommand(CommandKind.HELP, "Here's what I can do:"))
        return ""

    async def run_command(self, command: SlashCommand, parsed: ParsedCommand, *, redelivery: bool = False) -> None:
        """The slow half of a slash command, after its ack."""
        if parsed.kind is CommandKind.FILE:
            await self._file_ticket(command, parsed.argument, redelivery=redelivery)
        elif parsed.kind is CommandKind.STATUS:
            await self._show_status(command, parsed.argument)
        elif parsed.kind is CommandKind.PENDING:
            await self._show_pending(command)

    async def _file_ticket(self, command: SlashCommand, text: str, *, redelivery: bool) -> None:
        request = TicketRequest(
            text=text,
            requester=command.user_id,
            source=TicketSource.SLACK,
            channel=command.channel_id,
            approval=self._settings.approval_settings(),
        )
        label = ticket_label(new_short_id(command.dedupe_key()))
        try:
            async with asyncio.timeout(self._start_timeout):
                started = await self._service.start(request, dedupe_key=command.dedupe_key())
        except TimeoutError:
            logger.warning("%s: Temporal did not answer the start within %.0fs", label, self._start_timeout)
            await self._respond(
                command,
                SlackMessage(
                    f":warning: {TEMPORAL_DOWN} (no answer in {self._start_timeout:.0f}s), so I can't confirm that "
                    f"{label} started. Check `/agent-ticket status {label}` in a minute before filing it again."
                ),
            )
            return
        except (RPCError, RuntimeError) as error:
            logger.warning("%s: could not start: %s", label, error)
            await self._respond(
                command,
                SlackMessage(
                    f":warning: {TEMPORAL_DOWN}, so {label} was *not* started and nothing will change. "
                    "Please try again in a few minutes."
                ),
            )
            return
        if started.already_existed:
            logger.info("%s: the same command again (Slack redelivery: %s); nothing new started", label, redelivery)
        else:
            logger.info("%s: started %s for %s in %s", label, started.workflow_id, command.user_id, command.channel_id)

    async def _show_status(self, command: SlashCommand, reference: str) -> None:
        label = ticket_label(short_id_from(reference))
        try:
            status = await self._service.status(reference)
        except TicketNotFound:
            await self._respond(command, SlackMessage(f"There is no ticket {label}."))
            return
        except RPCError as error:
            logger.warning("%s: status query failed: %s", label, error)
            await self._respond(command, SlackMessage(f":warning: {TEMPORAL_DOWN}; try again in a minute."))
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
            check_decision(status, self._decision(value, user, approve=False))
        except (DecisionRefused, TicketNotFound) as refusal:
            await self._tell(click.channel_id, user, f":no_entry_sign: {refusal}")
            return
        except RPCError as error:
            logger.warning("%s: status query failed: %s", label, error)
            await self._tell(click.channel_id, user, f":warning: {TEMPORAL_DOWN}; nothing was sent. Try again.")
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
        """Check, signal, then tell the clicker whether the workflow counted it."""
        label = ticket_label(short_id_from(value.workflow_id))
        user = decision.decider
        try:
            before = await self._service.decide(value.workflow_id, decision)
        except (DecisionRefused, TicketNotFound) as refusal:
            logger.info("%s: %s refused before signalling: %s", label, user, refusal)
            await self._tell(channel, user, f":no_entry_sign: {refusal}")
            return
        except RPCError as error:
            logger.warning("%s: decision by %s not sent: %s", label, user, error)
            await self._tell(channel, user, f":warning: {TEMPORAL_DOWN}; your decision was not sent. Try again.")
            return
        seen = sum(1 for record in before.decisions if record.decision.decider == user)
        verdict = await self._verdict(value.workflow_id, user, seen)
        record = verdict[0] if verdict else None
        verb = "approval" if decision.approve else "rejection"
        logger.info("%s: %s by %s signalled; %s", label, verb, user, record.reason if record else "no verdict yet")
        if record is None:
            await self._tell(channel, user, f"Your {verb} of {label} was sent.")
        elif not record.accepted:
            await self._tell(channel, user, f":no_entry_sign: Your {verb} of {label} was not counted: {record.reason}.")
        elif decision.approve:
            await self._tell(channel, user, f":white_check_mark: You approved {label}.{still_needed(verdict)}")
        elif decision.replan:
            await self._tell(channel, user, f"You sent {label} back for a new plan: {escape(decision.comment)}")
        else:
            await self._tell(channel, user, f"You rejected {label}: {escape(decision.comment)}")

    async def _verdict(self, workflow_id: str, user: str, seen: int) -> tuple[DecisionRecord, TicketStatus] | None:
        """The workflow's record of this person's newest decision, once it has one, and the state then."""
        deadline = asyncio.get_running_loop().time() + self._decision_wait
        while True:
            try:
                status = await self._service.status(workflow_id)
            except (RPCError, TicketNotFound):
                return None
            mine = [record for record in status.decisions if record.decision.decider == user]
            if len(mine) > seen:
                return mine[-1], status
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def _tell(self, channel: str | None, user: str, text: str) -> None:
        """Only the clicker sees it; a failure is logged, never raised into Bolt."""
        if channel is None:
            logger.warning("no channel to answer %s in: %s", user, text)
            return
        try:
            await self._web.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as error:
            logger.warning("could not answer %s in %s: %s", user, channel, error.response.get("error"))


def still_needed(verdict: tuple[DecisionRecord, TicketStatus] | None) -> str:
    """ " It still needs N more approval(s)." while the request stays open after a counted approval."""
    if verdict is None:
        return ""
    record, status = verdict
    approval = status.approval
    if approval is None or approval.request_id != record.decision.request_id:
        return ""
    counted = sum(
        1
        for r in status.decisions
        if r.accepted and r.decision.approve and r.decision.request_id == approval.request_id
    )
    remaining = approval.required_approvals - counted
    return f" It still needs {remaining} more approval{'s' if remaining != 1 else ''}." if remaining > 0 else ""
