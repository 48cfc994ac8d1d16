"""Parsing `/agent-ticket` text: sub-commands, requests, and text that must start nothing."""

from __future__ import annotations

import pytest

from bot.slack.commands import HELP_TEXT, CommandKind, invalid_reply, parse_command_text
from core.models import MAX_TICKET_TEXT


@pytest.mark.parametrize(
    ("text", "kind", "argument"),
    [
        ("upgrade acme-corp to the pro plan", CommandKind.FILE, "upgrade acme-corp to the pro plan"),
        ("  help ", CommandKind.HELP, ""),
        ("HELP", CommandKind.HELP, ""),
        ("pending", CommandKind.PENDING, ""),
        ("status T-0123456789", CommandKind.STATUS, "T-0123456789"),
        ("status 0123456789", CommandKind.STATUS, "0123456789"),
        ("status of acme's subscription", CommandKind.FILE, "status of acme's subscription"),
        ("help me move acme to pro", CommandKind.FILE, "help me move acme to pro"),
        ("rename acme &amp; co to acme &lt;corp&gt;", CommandKind.FILE, "rename acme & co to acme <corp>"),
    ],
)
def test_what_the_text_asks_for(text: str, kind: CommandKind, argument: str) -> None:
    parsed = parse_command_text(text)
    assert (parsed.kind, parsed.argument) == (kind, argument)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "status", "status garbage", "x" * (MAX_TICKET_TEXT + 1), "drop\x00table", "hidden\u202einstruction"],
    ids=["empty", "blank", "status-alone", "status-not-an-id", "too-long", "control", "bidi"],
)
def test_text_that_would_not_make_a_ticket_is_invalid(text: str) -> None:
    parsed = parse_command_text(text)
    assert parsed.kind is CommandKind.INVALID and parsed.argument


@pytest.mark.parametrize("argument", ["garbage", "T-xyz", "&lt;!channel&gt;"])
def test_status_of_something_not_a_ticket_id_answers_with_help(argument: str) -> None:
    parsed = parse_command_text(f"status {argument}")
    assert parsed.kind is CommandKind.INVALID
    reply = invalid_reply(parsed)
    assert "is not a ticket id" in reply and HELP_TEXT in reply
    assert "<!channel>" not in reply  # what the person typed is shown, never acted on by Slack
