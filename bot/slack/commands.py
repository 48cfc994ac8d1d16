"""`/agent-ticket` text → what the person asked for, decided without any I/O.

Parsing is pure so the listener can choose its acknowledgement within Slack's 3 seconds,
and so every rule about what counts as a request is testable on its own. Text that would
not make a valid ticket is answered with help and starts nothing.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from core.models import MAX_TICKET_TEXT, clean_ticket_text
from rendering.slack_ids import COMMAND, SlackPayload

# `T-0123abcd45`, `ticket-0123abcd45` or the bare short id.
TICKET_REF = re.compile(r"^(?:[Tt]-|ticket-)?[0-9a-f]{10}$")

HELP_TEXT = (
    f"*{COMMAND}* files a ticket for a change to production data. A plan is made, checked against "
    "the safety policy, and either run or sent here for approval.\n"
    f"• `{COMMAND} <what you need>` — e.g. `{COMMAND} upgrade acme-corp to the pro plan`\n"
    f"• `{COMMAND} status T-…` — where a ticket stands\n"
    f"• `{COMMAND} pending` — tickets waiting for approval\n"
    f"• `{COMMAND} help` — this message"
)


class SlashCommand(SlackPayload):
    """The form fields Slack posts for a slash command (the ones we use)."""

    command: str = Field(min_length=1)
    text: str = ""
    team_id: str = Field(min_length=1, max_length=50)
    channel_id: str = Field(min_length=1, max_length=50)
    user_id: str = Field(min_length=1, max_length=50)
    trigger_id: str = Field(min_length=1, max_length=200)
    response_url: str = Field(pattern=r"^https?://")

    def dedupe_key(self) -> str:
        """Stable across Slack's redeliveries of this one invocation: they share the trigger id."""
        return f"slack:{self.team_id}:{self.channel_id}:{self.user_id}:{self.trigger_id}"


class CommandKind(StrEnum):
    FILE = "file"
    STATUS = "status"
    PENDING = "pending"
    HELP = "help"
    INVALID = "invalid"


@dataclass(frozen=True)
class ParsedCommand:
    kind: CommandKind
    # The ticket text for FILE, the ticket reference for STATUS, the problem for INVALID.
    argument: str = ""


def parse_command_text(raw: str) -> ParsedCommand:
    """Decide what `/agent-ticket <raw>` asks for; anything not a sub-command is a ticket request."""
    text = html.unescape(raw).strip()  # Slack escapes &, < and > in command text
    if not text:
        return ParsedCommand(
            CommandKind.INVALID, "Tell me what you need, e.g. `/agent-ticket upgrade acme-corp to pro`."
        )
    words = text.split()
    keyword = words[0].lower()
    if len(words) == 1 and keyword == "help":
        return ParsedCommand(CommandKind.HELP)
    if len(words) == 1 and keyword == "pending":
        return ParsedCommand(CommandKind.PENDING)
    if keyword == "status" and len(words) == 1:
        return ParsedCommand(CommandKind.INVALID, f"Which ticket? Use `{COMMAND} status T-…`.")
    if keyword == "status" and len(words) == 2:
        if TICKET_REF.match(words[1]):
            return ParsedCommand(CommandKind.STATUS, words[1])
        # Filing "status garbage" as a ticket would surprise everyone; say what a ticket id looks like.
        shown = html.escape(words[1][:40].replace("`", "'"), quote=False)
        return ParsedCommand(
            CommandKind.INVALID,
            f"`{shown}` is not a ticket id; use `{COMMAND} status T-…`, e.g. `status T-0123abcd45`.",
        )
    if len(text) > MAX_TICKET_TEXT:
        return ParsedCommand(
            CommandKind.INVALID,
            f"That request is {len(text)} characters long; the limit is {MAX_TICKET_TEXT}. "
            "Describe the change in fewer words.",
        )
    try:
        cleaned = clean_ticket_text(text)
    except ValueError as error:
        return ParsedCommand(CommandKind.INVALID, f"That request can't be filed: {error}.")
    return ParsedCommand(CommandKind.FILE, cleaned)


def invalid_reply(parsed: ParsedCommand) -> str:
    return f"{parsed.argument}\n\n{HELP_TEXT}"
