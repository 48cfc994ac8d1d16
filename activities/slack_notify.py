"""Slack delivery of ticket updates: one message per ticket, edited in place; replies in its thread.

Idempotent across activity retries: the message's `ts` travels in `TicketStatus.slack_message`
and is written to the ticket's app-DB row right after posting, and both are looked up before
posting, so a retried attempt edits the message it already posted instead of posting again.
Everything posted carries message metadata naming the ticket and the post; a retried attempt
looks for it in the channel or thread first, so a post whose answer was lost (the connection
dropped after Slack took it) is not made twice.

Temporal owns retries. The web client is built with slack_sdk's retry handlers off; a 429 is
raised as a retryable error whose `next_retry_delay` is Slack's Retry-After, other transient
failures are raised as they are, and errors that retrying cannot fix (a missing channel, a
revoked token, …) are returned as `delivered=False` so the workflow audits them and the
ticket carries on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.models import NotifyEvent, NotifyPost, NotifyResult, SlackMessageRef, TicketStatus
from core.names import ticket_label
from core.schema import TicketRow, utcnow
from core.settings import Settings
from rendering.slack import escalation_message, outcome_reply, reminder_message, ticket_message

logger = logging.getLogger(__name__)

# Slack errors that the same call will hit again however often it is retried.
PERMANENT_ERRORS = frozenset(
    {
        "account_inactive",
        "cannot_reply_to_message",
        "channel_not_found",
        "ekm_access_denied",
        "enterprise_is_restricted",
        "invalid_arguments",
        "invalid_auth",
        "invalid_blocks",
        "invalid_blocks_format",
        "is_archived",
        "missing_scope",
        "msg_too_long",
        "no_permission",
        "no_such_subteam",
        "not_allowed_token_type",
        "not_authed",
        "not_in_channel",
        "restricted_action",
        "team_access_not_granted",
        "token_expired",
        "token_revoked",
        "two_factor_setup_required",
        "user_not_found",
    }
)
ERROR_RATE_LIMITED = "SlackRateLimited"
ERROR_SLACK_API = "SlackApiError"
ERROR_SLACK_PERMANENT = "SlackPermanentError"
DEFAULT_RETRY_AFTER_SECONDS = 5
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
# Message metadata that marks what agent-ticket posted, so a retried delivery can tell it posted already.
POST_EVENT_TYPE = "agent_ticket_post"
MESSAGE_KEY = "message"
# How far back in a channel a retry looks for a message it may have posted (most recent first).
HISTORY_LOOKBACK = 100


def _is_retry() -> bool:
    """Whether an earlier attempt of this activity may have reached Slack (always False outside one)."""
    try:
        return activity.info().attempt > 1
    except RuntimeError:
        return False


def activity_web_client(settings: Settings) -> AsyncWebClient:
    """A Web API client for activities: Temporal owns retries, so slack_sdk's own are off."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, retry_handlers=[])


def slack_error_code(error: SlackApiError) -> str:
    data = error.response.data if isinstance(error.response.data, dict) else {}
    return str(data.get("error") or f"http_{error.response.status_code}")


def retry_after(error: SlackApiError) -> timedelta:
    raw = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
    try:
        seconds = max(1, int(str(raw)))
    except ValueError:
        seconds = DEFAULT_RETRY_AFTER_SECONDS
    return timedelta(seconds=seconds)


def transient(error: SlackApiError, what: str) -> ApplicationError | None:
    """The error to raise so Temporal retries `what`, or None when retrying cannot help."""
    code = slack_error_code(error)
    if error.response.status_code == 429 or code == "ratelimited":
        delay = retry_after(error)
        return ApplicationError(
            f"Slack rate-limited {what}; retrying after {delay.total_seconds():.0f}s",
            type=ERROR_RATE_LIMITED,
            next_retry_delay=delay,
        )
    if code in PERMANENT_ERRORS:
        return None
    return ApplicationError(f"Slack {what} failed: {code}", type=ERROR_SLACK_API)


@dataclass
class _Delivery:
    """What one publish call has achieved so far, so a later failure still reports the message."""

    message: SlackMessageRef | None = None


def post_metadata(ticket_id: str, key: str) -> dict[str, Any]:
    """Slack message metadata naming a one-off post, so a retry can find it in the thread."""
    return {"event_type": POST_EVENT_TYPE, "event_payload": {"ticket": ticket_id, "key": key}}


def _is_post(message: dict[str, Any], ticket_id: str, key: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return bool(
        metadata.get("event_type") == POST_EVENT_TYPE
        and payload.get("ticket") == ticket_id
        and payload.get("key") == key
    )


class SlackNotifier:
    """The `Notifier` for Slack; receives the Web API client and the app DB's session factory."""

    def __init__(
        self,
        web_client: AsyncWebClient,
        app_sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        public_url: str | None = None,
        revert_window: timedelta | None = None,
    ) -> None:
        self._web = web_client
        self._sessions = app_sessions
        self._public_url = public_url
        self._revert_window = revert_window  # None: no Undo button on done tickets

    @classmethod
    def from_settings(cls, settings: Settings, app_sessions: async_sessionmaker[AsyncSession]) -> SlackNotifier:
        return cls(
            activity_web_client(settings),
            app_sessions,
            public_url=settings.public_url,
            revert_window=settings.revert_window,
        )

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        label = ticket_label(status.ticket_id)
        delivery = _Delivery(message=status.slack_message)
        posted: list[str] = []
        try:
            if status.request.channel is not None:
                delivery.message = await self._sync_message(status, delivery)
            for post in posts:
                if await self._post_once(status, post, delivery.message):
                    posted.append(post.key)
        except SlackApiError as error:
            retry = transient(error, f"update of {label}")
            if retry is not None:
                logger.warning("%s: %s", label, retry.message)
                raise retry from error
            code = slack_error_code(error)
            logger.error("%s: Slack notification failed for good: %s", label, code)
            return NotifyResult(delivered=False, message=delivery.message, error=f"Slack: {code}", posted=posted)
        logger.info("%s: Slack message delivered (version %d)", label, status.message_version)
        return NotifyResult(delivered=True, message=delivery.message, posted=[post.key for post in posts])

    async def _post_once(self, status: TicketStatus, post: NotifyPost, ref: SlackMessageRef | None) -> bool:
        """Send one post unless an earlier attempt already did; False when it has nowhere to go."""
        if post.kind is NotifyEvent.ESCALATION:
            channel, thread = status.request.approval.escalation_channel, None
            message = escalation_message(status, self._public_url)
        elif ref is not None:
            channel, thread = ref.channel, ref.ts
            message = reminder_message(status) if post.kind is NotifyEvent.REMINDER else outcome_reply(status)
        else:
            return False  # filed outside Slack: the message and its thread do not exist
        if not channel:
            return False
        if _is_retry() and await self._already_posted(status.ticket_id, post.key, channel, thread):
            logger.info("%s: %s was already posted by an earlier attempt", ticket_label(status.ticket_id), post.key)
            return True
        await self._web.chat_postMessage(
            channel=channel, thread_ts=thread, metadata=post_metadata(status.ticket_id, post.key), **message.payload()
        )
        return True

    async def _already_posted(self, ticket_id: str, key: str, channel: str, thread: str | None) -> bool:
        """Whether Slack already holds this post: an earlier attempt may have posted and lost the answer."""
        try:
            if thread is not None:
                response = await self._web.conversations_replies(
                    channel=channel, ts=thread, include_all_metadata=True, limit=200
                )
            else:
                response = await self._web.conversations_history(
                    channel=channel, include_all_metadata=True, limit=HISTORY_LOOKBACK
                )
        except SlackApiError as error:
            if slack_error_code(error) in PERMANENT_ERRORS:
                logger.warning("cannot look for an earlier post (%s); posting", slack_error_code(error))
                return False
            raise
        return any(_is_post(message, ticket_id, key) for message in response.get("messages") or [])

    async def _sync_message(self, status: TicketStatus, delivery: _Delivery) -> SlackMessageRef:
        """Edit the ticket's message to show `status`, posting it first if it doesn't exist yet."""
        message = ticket_message(status, self._public_url, revert_window=self._revert_window, now=datetime.now(UTC))
        ref = delivery.message or await self._stored_ref(status.ticket_id)
        if ref is None and _is_retry():
            ref = await self._find_posted_message(status)
        if ref is not None:
            try:
                await self._web.chat_update(channel=ref.channel, ts=ref.ts, **message.payload())
                return ref
            except SlackApiError as error:
                if slack_error_code(error) != "message_not_found":
                    raise
                logger.warning("%s: its Slack message was deleted; posting a new one", ticket_label(status.ticket_id))
        channel = status.request.channel
        assert channel is not None
        response = await self._web.chat_postMessage(
            channel=channel, metadata=post_metadata(status.ticket_id, MESSAGE_KEY), **message.payload()
        )
        ref = SlackMessageRef(channel=str(response["channel"]), ts=str(response["ts"]))
        delivery.message = ref
        await self._store_ref(status, ref)
        logger.info("%s: posted its Slack message %s/%s", ticket_label(status.ticket_id), ref.channel, ref.ts)
        return ref

    async def _find_posted_message(self, status: TicketStatus) -> SlackMessageRef | None:
        """The ticket's message, if an earlier attempt posted it but never learned its ts."""
        channel = status.request.channel
        if channel is None:
            return None
        try:
            response = await self._web.conversations_history(
                channel=channel, include_all_metadata=True, limit=HISTORY_LOOKBACK
            )
        except SlackApiError as error:
            if slack_error_code(error) in PERMANENT_ERRORS:
                return None
            raise
        for message in response.get("messages") or []:
            if _is_post(message, status.ticket_id, MESSAGE_KEY):
                return SlackMessageRef(channel=channel, ts=str(message["ts"]))
        return None

    async def _stored_ref(self, ticket_id: str) -> SlackMessageRef | None:
        """The message an earlier attempt posted, if it got as far as recording it."""
        if self._sessions is None:
            return None
        query = select(TicketRow.slack_channel, TicketRow.slack_ts).where(TicketRow.ticket_id == ticket_id)
        try:
            async with self._sessions() as session:
                row = (await session.execute(query)).first()
        except SQLAlchemyError as error:  # the app DB is down: Slack itself is asked on a retry
            logger.warning("%s: app DB unavailable for its message ts: %s", ticket_label(ticket_id), error)
            return None
        if row is None or not row.slack_channel or not row.slack_ts:
            return None
        return SlackMessageRef(channel=row.slack_channel, ts=row.slack_ts)

    async def _store_ref(self, status: TicketStatus, ref: SlackMessageRef) -> None:
        """Record the ts at once. A failure here is logged, not raised: raising would post twice."""
        if self._sessions is None:
            return
        try:
            if await self._update_ref(status.ticket_id, ref):
                return
            try:
                await self._insert_ref(status, ref)
            except IntegrityError:  # the audit activity created the row meanwhile
                await self._update_ref(status.ticket_id, ref)
        except SQLAlchemyError:
            logger.exception("%s: could not record its Slack message ts", ticket_label(status.ticket_id))

    async def _update_ref(self, ticket_id: str, ref: SlackMessageRef) -> bool:
        assert self._sessions is not None
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(TicketRow)
                .where(TicketRow.ticket_id == ticket_id)
                .values(slack_channel=ref.channel, slack_ts=ref.ts, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    async def _insert_ref(self, status: TicketStatus, ref: SlackMessageRef) -> None:
        """Normally the audit activity has made the row already; if not, make it from the status."""
        assert self._sessions is not None
        request = status.request
        async with self._sessions() as session, session.begin():
            session.add(
                TicketRow(
                    ticket_id=status.ticket_id,
                    workflow_id=status.workflow_id,
                    requester=request.requester,
                    source=request.source.value,
                    channel=request.channel,
                    text=request.text,
                    stage=status.stage.value,
                    status=status.status_label,
                    risk=status.report.risk.value if status.report else None,
                    slack_channel=ref.channel,
                    slack_ts=ref.ts,
                )
            )


class SlackApproverResolver:
    """The `ApproverResolver` for Slack: user group ids (`S…`) become their members."""

    def __init__(self, web_client: AsyncWebClient) -> None:
        self._web = web_client

    async def resolve(self, approvers: list[str]) -> list[str]:
        people: list[str] = []
        for entry in approvers:
            if USERGROUP_ID.match(entry):
                people.extend(await self._members(entry))
            else:
                people.append(entry)
        return list(dict.fromkeys(people))

    async def _members(self, usergroup: str) -> list[str]:
        try:
            response = await self._web.usergroups_users_list(usergroup=usergroup)
        except SlackApiError as error:
            retry = transient(error, f"usergroups.users.list for {usergroup}")
            if retry is not None:
                raise retry from error
            raise ApplicationError(
                f"Slack user group {usergroup} in APPROVERS can't be expanded: {slack_error_code(error)}",
                type=ERROR_SLACK_PERMANENT,
                non_retryable=True,
            ) from error
        members = [str(user) for user in response.get("users") or []]
        logger.info("approver group %s has %d member(s)", usergroup, len(members))
        return members
