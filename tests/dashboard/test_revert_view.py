"""What the ticket page says about undo, from the models alone: links, conflicts, and when Revert is offered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.dashboard.revert_view import conflict_rows, revert_view
from core.masking import MASK
from core.models import (
    ExecutionResult,
    OperationResult,
    OutcomeStatus,
    RevertOf,
    RowConflict,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
)
from core.schema import AuditEventRow

RAN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _done(changed: int = 1, reverts: RevertOf | None = None) -> TicketStatus:
    return TicketStatus(
        workflow_id="ticket-abc",
        ticket_id="abc",
        request=TicketRequest(text="mark invoice 14 as paid", requester="dave", reverts=reverts),
        stage=Stage.FINISHED,
        created_at=RAN,
        updated_at=RAN,
        outcome=TicketOutcome(
            status=OutcomeStatus.DONE,
            reason="executed",
            finished_at=RAN,
            execution=ExecutionResult(
                plan_hash="h",
                results=[OperationResult(operation_index=0, kind="update", table="invoices", rows_affected=changed)],
                executed_at=RAN,
            ),
        ),
    )


def _reverted_event(by: str) -> AuditEventRow:
    return AuditEventRow(ticket_id="abc", kind="reverted", summary="reverted by x", detail={"reverted_by": by})


def test_revert_is_offered_on_a_done_ticket_that_changed_rows_while_its_window_is_open() -> None:
    view = revert_view(_done(), [], window=WEEK, now=RAN + timedelta(days=6))
    assert view.can_revert and view.rows_changed == 1 and view.closed is None
    closed = revert_view(_done(), [], window=WEEK, now=RAN + WEEK)
    assert not closed.can_revert and closed.closed is not None and "for 7 days" in closed.closed
    assert not revert_view(_done(changed=0), [], window=WEEK, now=RAN).can_revert
    assert not revert_view(None, [], window=WEEK, now=RAN).can_revert


def test_a_reverted_ticket_links_to_its_revert_and_offers_no_second_one() -> None:
    view = revert_view(_done(), [_reverted_event("ticket-def")], window=WEEK, now=RAN)
    assert view.reverted_by == "def" and not view.can_revert and view.closed is None


def test_a_revert_ticket_links_to_the_ticket_it_undoes() -> None:
    status = _done(reverts=RevertOf(workflow_id="ticket-orig", include_conflicts=True))
    view = revert_view(status, [], window=WEEK, now=RAN)
    assert (view.reverts, view.include_conflicts) == ("orig", True)
    assert view.can_revert  # a done revert can itself be reverted, which restores the change


def test_conflicts_show_the_columns_that_differ_before_after_and_now() -> None:
    changed, deleted, private = conflict_rows(
        [
            RowConflict(
                table="invoices",
                key="14",
                before={"id": 14, "status": "open", "amount_cents": 900},
                after={"id": 14, "status": "paid", "amount_cents": 900},
                now={"id": 14, "status": "paid", "amount_cents": 901},
            ),
            RowConflict(table="invoices", key="15", before={"id": 15, "status": "open"}, after={"id": 15}, now=None),
            RowConflict(table="users", key="3", before={"email": MASK}, after={"email": MASK}, now={"email": MASK}),
        ]
    )
    assert changed.state == "changed since"
    assert [(line.column, line.before, line.after, line.now, line.changed_since) for line in changed.lines] == [
        ("status", "open", "paid", "paid", False),
        ("amount_cents", "900", "900", "901", True),
    ]
    assert deleted.state == "deleted since" and all(line.now is None for line in deleted.lines)
    assert [line.column for line in deleted.lines] == ["id", "status"]
    assert private.lines == []  # the template says a private value changed, without values
