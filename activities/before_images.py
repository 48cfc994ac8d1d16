"""Before-images: what each executed plan changed, row by row, kept in the target DB for undo.

Kept in the plan's own ledger row (`activities/execution.py`), so the images exist exactly when
the change does, and keeping them costs no statement. A revert claims its original in its own
transaction, so a change is reverted at most once and a failed revert claims nothing. Images
older than the revert window are purged; the ledger row stays, as the proof the plan ran once.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.plan_runner import StepOutcome
from core.ledger import executions
from core.models import Scalar, SelectOperation
from core.names import short_id_from, ticket_label
from rendering.words import window_in_words

PURGE_EVERY_SECONDS = 600.0  # so expired images outlive their window by at most this long
_next_purge: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


class RevertRefused(Exception):
    """The change cannot be reverted (any more); the message says why, in words."""


@dataclass(frozen=True)
class RowImage:
    """One row one operation changed: its primary key, and its full values before and after."""

    seq: int
    operation_index: int
    table: str
    kind: str  # insert, update or delete
    row_key: dict[str, Scalar]
    before: dict[str, Scalar] | None
    after: dict[str, Scalar] | None

    @property
    def columns(self) -> set[str]:
        """The columns the image holds: every column the table had when the change ran."""
        return set(self.before or {}) | set(self.after or {})


@dataclass(frozen=True)
class Change:
    """An executed plan's change set, as the ledger holds it."""

    workflow_id: str
    plan_hash: str
    requester: str
    approved_by: list[str]
    executed_at: datetime
    reverted_by: str | None
    reverts: str | None
    images: list[RowImage]


def images_of(outcomes: Sequence[StepOutcome]) -> list[RowImage]:
    """The rows every write of a plan changed, in the order it changed them."""
    images: list[RowImage] = []
    for outcome in outcomes:
        operation = outcome.operation
        if isinstance(operation, SelectOperation):
            continue
        for key in outcome.keys:
            images.append(
                RowImage(
                    seq=len(images),
                    operation_index=outcome.index,
                    table=operation.table,
                    kind=operation.kind,
                    row_key=outcome.primary_keys[key],
                    before=outcome.before.get(key),
                    after=outcome.after.get(key),
                )
            )
    return images


def image_rows(images: list[RowImage]) -> list[dict[str, Any]] | None:
    """The images as the ledger row keeps them (None: the plan changed no rows)."""
    if not images:
        return None
    return [
        {
            "operation_index": image.operation_index,
            "table": image.table,
            "kind": image.kind,
            "row_key": image.row_key,
            "before": image.before,
            "after": image.after,
        }
        for image in images
    ]


async def purge_now_and_then(connection: AsyncConnection, cutoff: datetime) -> None:
    """`purge_expired` at most once per `PURGE_EVERY_SECONDS` per database: a statement on every plan is waste."""
    engine = connection.engine.sync_engine
    if time.monotonic() < _next_purge.get(engine, 0.0):
        return
    _next_purge[engine] = time.monotonic() + PURGE_EVERY_SECONDS
    await purge_expired(connection, cutoff)


async def purge_expired(connection: AsyncConnection, cutoff: datetime) -> None:
    """Forget the images of changes executed before `cutoff`; the ledger row itself stays (exactly once)."""
    await connection.execute(
        update(executions)
        .where(executions.c.executed_at < cutoff, executions.c.images.is_not(None))
        .values(images=None)
    )


async def load_change(connection: AsyncConnection, workflow_id: str) -> Change | None:
    """The change `workflow_id` made, if it made one and its images are still kept."""
    query = select(executions).where(executions.c.workflow_id == workflow_id)
    row = (await connection.execute(query)).mappings().first()
    if row is None or not row["images"]:
        return None
    images = [
        RowImage(
            seq=seq,
            operation_index=item["operation_index"],
            table=item["table"],
            kind=item["kind"],
            row_key=dict(item["row_key"]),
            before=item["before"],
            after=item["after"],
        )
        for seq, item in enumerate(row["images"])
    ]
    return Change(
        workflow_id=row["workflow_id"],
        plan_hash=row["plan_hash"],
        requester=row["requester"] or "",
        approved_by=list(row["approved_by"] or []),
        executed_at=_aware(row["executed_at"]),
        reverted_by=row["reverted_by"],
        reverts=row["reverts"],
        images=images,
    )


@dataclass(frozen=True)
class Lineage:
    """The changes a revert undoes or puts back: the original and, up the chain of reverts, theirs."""

    requesters: list[str]
    most_approvals: int


MAX_LINEAGE = 50  # reverts of reverts followed back; a longer chain is cut (and has been approved that often)


async def lineage(connection: AsyncConnection, change: Change) -> Lineage:
    """Who asked for each change in `change`'s chain of reverts, and the most approvals any had."""
    requesters, most = [change.requester], len(change.approved_by)
    reverted = change.reverts
    for _ in range(MAX_LINEAGE):
        if not reverted:
            break
        query = select(executions.c.requester, executions.c.approved_by, executions.c.reverts)
        row = (await connection.execute(query.where(executions.c.workflow_id == reverted))).first()
        if row is None:
            break
        requesters.append(row.requester or "")
        most = max(most, len(row.approved_by or []))
        reverted = row.reverts
    return Lineage([person for person in dict.fromkeys(requesters) if person], most)


def refusal(change: Change | None, workflow_id: str, now: datetime, window: timedelta) -> str | None:
    """Why `workflow_id`'s change cannot be reverted now, or None if it can."""
    label = ticket_label(short_id_from(workflow_id))
    if change is None:
        return (
            f"{label} has no change to revert: it changed no rows, did not execute, or ran more than "
            f"{window_in_words(window)} ago (its before-images are kept that long)"
        )
    if change.reverted_by:
        return f"{label} was already reverted by {ticket_label(short_id_from(change.reverted_by))}"
    if change.executed_at < now - window:
        window_words = window_in_words(window)
        return f"{label} ran more than {window_words} ago; changes can be reverted for {window_words}"
    return None


async def claim_revert(
    connection: AsyncConnection, original: str, revert_workflow_id: str, now: datetime, window: timedelta
) -> None:
    """Mark `original` reverted by this revert, in its transaction, or raise `RevertRefused`."""
    claimed = await connection.execute(
        update(executions)
        .where(
            executions.c.workflow_id == original,
            executions.c.reverted_by.is_(None),
            executions.c.images.is_not(None),
            executions.c.executed_at >= now - window,
        )
        .values(reverted_by=revert_workflow_id)
    )
    if claimed.rowcount == 1:
        return
    change = await load_change(connection, original)
    if change is not None and change.reverted_by == revert_workflow_id:
        return  # this revert's own earlier attempt (its ledger row is checked before this runs)
    raise RevertRefused(
        refusal(change, original, now, window) or f"{ticket_label(short_id_from(original))} cannot be reverted"
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
