"""What the ticket page shows about undo: the links both ways, the conflicts, and whether to offer Revert.

A revert ticket links to the ticket it undoes and shows the rows others changed since (before,
after, now; private values arrive masked). A done ticket that changed rows offers the Revert
button while its window is open, unless the audit trail says it was already reverted
(docs/undo.md). Pure functions over the shared models, like `presenters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.models import OutcomeStatus, RowConflict, Scalar, TicketStatus
from core.names import short_id_from
from core.schema import AuditEventRow
from rendering.words import cell_text, conflict_columns, window_in_words
from service.tickets import reverted_by


@dataclass(frozen=True)
class ConflictLine:
    """One column of a conflicting row: how it was before the original, right after it, and now."""

    column: str
    before: str | None  # None: the row did not exist then
    after: str | None
    now: str | None

    @property
    def changed_since(self) -> bool:
        return self.after != self.now


@dataclass(frozen=True)
class ConflictRow:
    table: str
    key: str
    state: str  # what happened to the row since, in words
    lines: list[ConflictLine]


@dataclass
class RevertView:
    reverts: str | None = None  # this ticket undoes that one (short id)
    reverted_by: str | None = None  # this ticket was undone by that one (short id)
    include_conflicts: bool = False
    conflicts: list[ConflictRow] = field(default_factory=list)
    can_revert: bool = False
    rows_changed: int = 0
    closed: str | None = None  # why a done ticket offers no Revert button


def revert_view(
    status: TicketStatus | None, audit: list[AuditEventRow], *, window: timedelta, now: datetime
) -> RevertView:
    undone_by = reverted_by(audit)
    view = RevertView(reverted_by=short_id_from(undone_by) if undone_by else None)
    if status is None:
        return view
    if status.request.reverts is not None:
        view.reverts = short_id_from(status.request.reverts.workflow_id)
        view.include_conflicts = status.request.reverts.include_conflicts
    if status.report is not None and status.report.revert is not None:
        view.conflicts = conflict_rows(status.report.revert.conflicts)
    outcome = status.outcome
    if outcome is None or outcome.status is not OutcomeStatus.DONE or outcome.execution is None:
        return view
    view.rows_changed = outcome.execution.rows_changed
    if view.rows_changed == 0 or view.reverted_by is not None:
        return view
    closes = outcome.execution.executed_at + window
    if closes <= now:
        view.closed = (
            f"It can no longer be reverted: changes can be reverted for {window_in_words(window)} after they ran."
        )
        return view
    view.can_revert = True
    return view


def conflict_rows(conflicts: list[RowConflict]) -> list[ConflictRow]:
    """Each conflicting row with the columns that tell before, after and now apart (`rendering.words`)."""
    return [_conflict_row(conflict) for conflict in conflicts]


def _conflict_row(conflict: RowConflict) -> ConflictRow:
    images = (conflict.before, conflict.after, conflict.now)
    lines = [ConflictLine(column, *(_cell(image, column) for image in images)) for column in conflict_columns(conflict)]
    return ConflictRow(conflict.table, conflict.key, _state(conflict), lines)


def _cell(image: dict[str, Scalar] | None, column: str) -> str | None:
    return None if image is None else cell_text(image.get(column))


def _state(conflict: RowConflict) -> str:
    if conflict.now is None:
        return "deleted since"
    if conflict.after is None:
        return "inserted again since"
    return "changed since"
