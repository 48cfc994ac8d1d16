"""Undo as people read it: the Slack Undo button and its window, the revert link, conflicts before / after / now."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console

from cli.render import status_view
from core.models import (
    OutcomeStatus,
    RevertCheck,
    RevertOf,
    Risk,
    RowConflict,
    TicketStatus,
)
from rendering import words
from rendering.slack import ticket_message, undo_reply
from rendering.slack_ids import APPROVE_ACTION_ID, UNDO_ACTION_ID, UndoValue
from tests.slack.statuses import NOW, awaiting, decision, finished, planned, received

WINDOW = timedelta(days=7)
ORIGINAL = "ticket-0123456789"
PAID = RowConflict(
    table="invoices",
    key="3",
    before={"id": 3, "status": "open", "total": 120},
    after={"id": 3, "status": "paid", "total": 120},
    now={"id": 3, "status": "void", "total": 120},
)
GONE = RowConflict(table="invoices", key="4", before={"id": 4, "status": "open"}, after={"id": 4, "status": "paid"})


def done(rows: int = 1) -> TicketStatus:
    status = awaiting()
    status.decisions.append(decision(status, "UALICE001"))
    return finished(status, OutcomeStatus.DONE, rows=rows)


def blocks_of(status: TicketStatus, **undo: Any) -> list[dict[str, Any]]:
    return [block.to_dict() for block in ticket_message(status, "https://tickets.example.com", **undo).blocks]


def undo_buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == UNDO_ACTION_ID
    ]


def text_of(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def revert_ticket(*conflicts: RowConflict, include_conflicts: bool = False, risk: Risk = Risk.HIGH) -> TicketStatus:
    status = received("9876543210", text="revert T-0123456789")
    status.request.reverts = RevertOf(workflow_id=ORIGINAL, include_conflicts=include_conflicts)
    status = planned(status, risk=risk)
    assert status.report is not None
    status.report.revert = RevertCheck(
        reverts=ORIGINAL, conflicts=list(conflicts), include_conflicts=include_conflicts, original_approvals=1
    )
    return status


# ------------------------------------------------------------------ the Undo button


def test_a_done_ticket_that_changed_rows_offers_undo_while_its_window_is_open() -> None:
    blocks = blocks_of(done(), revert_window=WINDOW, now=NOW + timedelta(days=6, hours=23))

    [button] = undo_buttons(blocks)
    assert UndoValue.decode(button["value"]).workflow_id == ORIGINAL
    assert button["confirm"]["confirm"]["text"] == "Undo"
    assert "Can be undone until" in text_of(blocks)
    assert blocks[-1]["type"] == "context"  # the dashboard link stays last, after the button


@pytest.mark.parametrize(
    ("status", "undo", "why"),
    [
        (done(), {"revert_window": WINDOW, "now": NOW + WINDOW}, "the window has closed"),
        (done(), {"revert_window": WINDOW, "now": NOW + WINDOW + timedelta(hours=1)}, "the window has closed"),
        (done(rows=0), {"revert_window": WINDOW, "now": NOW}, "it changed no rows"),
        (finished(awaiting(), OutcomeStatus.BLOCKED, "no filter"), {"revert_window": WINDOW, "now": NOW}, "blocked"),
        (finished(awaiting(), OutcomeStatus.FAILED, "deadlock"), {"revert_window": WINDOW, "now": NOW}, "failed"),
        (awaiting(), {"revert_window": WINDOW, "now": NOW}, "not finished"),
        (done(), {}, "the sender has no window (status replies, tests)"),
    ],
)
def test_no_undo_button_otherwise(status: TicketStatus, undo: dict[str, Any], why: str) -> None:
    blocks = blocks_of(status, **undo)
    assert undo_buttons(blocks) == [], why
    assert "Can be undone" not in text_of(blocks)


# ------------------------------------------------------------------ the revert ticket's message


def test_a_revert_says_which_ticket_it_reverts() -> None:
    blocks = blocks_of(awaiting(revert_ticket()))
    assert "reverts *T-0123456789*" in text_of(blocks)
    assert "Conflicts" not in text_of(blocks)  # none found
    assert any(e.get("action_id") == APPROVE_ACTION_ID for b in blocks if b["type"] == "actions" for e in b["elements"])


def test_a_revert_blocked_by_conflicts_shows_each_row_before_after_and_now() -> None:
    status = finished(revert_ticket(PAID, GONE, risk=Risk.BLOCKED), OutcomeStatus.BLOCKED, "blocked by safety policy")
    text = text_of(blocks_of(status, revert_window=WINDOW, now=NOW))

    assert "2 rows changed by someone else since T-0123456789 ran" in text
    assert "the revert is *blocked* so as not to overwrite them" in text
    assert "`invoices` row `3`" in text
    assert "before: `status` = `'open'`" in text
    assert "after: `status` = `'paid'`" in text
    assert "now: `status` = `'void'`" in text
    assert "`total`" not in text  # the same in all three: left out
    assert "`invoices` row `4`" in text and "now: no row" in text
    assert "before: `id` = `4`, `status` = `'open'`" in text  # a row gone since: every column shown


def test_a_revert_that_overwrites_conflicts_says_so() -> None:
    text = text_of(blocks_of(awaiting(revert_ticket(PAID, include_conflicts=True))))
    assert "this revert *overwrites* those changes" in text and "now: `status` = `'void'`" in text


def test_conflict_words_are_the_same_for_every_medium() -> None:
    inserted = RowConflict(table="notes", key="9", after={"id": 9, "body": "hi"}, now={"id": 9, "body": "x"})
    assert words.conflict_lines(PAID) == [
        "invoices row 3",
        "before: status = 'open'",
        "after: status = 'paid'",
        "now: status = 'void'",
    ]
    assert words.conflict_lines(inserted)[1] == "before: no row (inserted by the change)"
    assert words.conflict_columns(inserted) == ["id", "body"]
    assert words.reverts_text("T-1") == "reverts T-1" and words.reverted_by_text("T-2") == "reverted by T-2"


# ------------------------------------------------------------------ what the clicker hears


def test_the_clicker_hears_the_approvals_needed_or_the_refusal() -> None:
    waiting = awaiting(revert_ticket())
    assert undo_reply("T-0123456789", "T-9876543210", waiting) == (
        ":leftwards_arrow_with_hook: T-9876543210 will revert T-0123456789; it needs 1 approval "
        "from <@UALICE001>, <@UBOB00001>."
    )
    refused = finished(revert_ticket(), OutcomeStatus.BLOCKED, "T-0123456789 was already reverted by T-5555555555")
    assert undo_reply("T-0123456789", "T-9876543210", refused) == (
        ":no_entry_sign: T-9876543210 will not revert T-0123456789: T-0123456789 was already reverted by T-5555555555"
    )
    assert "still being checked" in undo_reply("T-0123456789", "T-9876543210", None)
    assert "still being checked" in undo_reply("T-0123456789", "T-9876543210", revert_ticket())


# ------------------------------------------------------------------ agent-ticket show


def shown(status: TicketStatus, reverted_by: str | None = None) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(status_view(status, reverted_by))
    return console.export_text()


def test_show_links_a_revert_and_its_original_both_ways() -> None:
    assert "reverts T-0123456789" in shown(awaiting(revert_ticket()))
    original = shown(done(), reverted_by="ticket-9876543210")
    assert "reverted by T-9876543210" in original
    assert "reverted by" not in shown(done())


def test_show_lists_conflicts_before_after_and_now() -> None:
    status = finished(revert_ticket(PAID, GONE, risk=Risk.BLOCKED), OutcomeStatus.BLOCKED, "blocked by safety policy")
    text = shown(status)
    assert "Conflicts: 2 rows changed by someone else since T-0123456789 ran" in text
    line = next(line for line in text.splitlines() if "status = 'void'" in line)
    assert "invoices" in line and "status = 'open'" in line and "status = 'paid'" in line
    gone = next(line for line in text.splitlines() if "│ 4 " in line)
    assert "no row" in gone
