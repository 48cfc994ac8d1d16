"""Undo: the inverse plan of an executed ticket, built from its before-images, and its checks.

The planner "revert" asks no LLM: the plan is a function of the images alone, in reverse order.
An update is put back to its values before, a deleted row is inserted again with its old primary
key, and an inserted row is deleted by its key. Judging a revert (`check_revert`, called by the
safety activity) builds the plan again from the images and refuses any other, then compares each
row with how the original left it: a row changed since is a conflict, shown before, after and now,
and blocks the revert unless it was asked to overwrite conflicts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import LargeBinary, MetaData, Table, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity

from activities.before_images import Change, RowImage, load_change, refusal
from activities.plan_runner import key_of
from activities.sql import coerce_value, reflect_target, row_to_dict
from core.masking import MASK
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Operation,
    Plan,
    PlanRevertInput,
    RevertCheck,
    RevertOf,
    RevertPlan,
    RowConflict,
    Scalar,
    UpdateOperation,
)
from core.names import ACTIVITY_PLAN_REVERT, short_id_from, ticket_label
from core.policy import Policy

logger = logging.getLogger(__name__)

PLANNER = "revert"
DEFAULT_WINDOW = timedelta(days=7)


def inverse_plan(change: Change) -> Plan:
    """The operations that put every row `change` touched back as it was, last change first.

    Rows one operation changed to the same values are put back by one operation (`in` on a
    single-column key); a plan too long for one ticket raises ValueError saying so.
    """
    operations: list[Operation] = []
    for group in _groups_in_reverse(change.images):
        operations.extend(_inverse(group))
    label = ticket_label(short_id_from(change.workflow_id))
    rows = len({(image.table, key_of(list(image.row_key.values()))) for image in change.images})
    try:
        return Plan(
            summary=f"Revert {label}: put {rows} row(s) back as they were before it ran",
            rationale=f"Built from {label}'s before-images, last change first; no LLM was asked.",
            operations=operations,
            planner=PLANNER,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ValueError(f"its inverse cannot be written as one plan ({where}: {problem['msg']})") from None


def _groups_in_reverse(images: list[RowImage]) -> Iterator[list[RowImage]]:
    """Images of one operation with the same inverse, the original's last operation first."""
    by_operation: dict[int, list[RowImage]] = {}
    for image in images:
        by_operation.setdefault(image.operation_index, []).append(image)
    for index in sorted(by_operation, reverse=True):
        groups: dict[str, list[RowImage]] = {}
        for image in reversed(by_operation[index]):
            groups.setdefault(_inverse_signature(image), []).append(image)
        yield from groups.values()


def _inverse_signature(image: RowImage) -> str:
    """Rows whose inverse differs only in the key share one (updates and deletes of a one-column key)."""
    if image.kind == "update" and len(image.row_key) == 1:
        return f"update:{sorted(_changed_before(image).items())!r}"
    if image.kind == "insert" and len(image.row_key) == 1:
        return "delete"
    return f"row:{image.seq}"


def _changed_before(image: RowImage) -> dict[str, Scalar]:
    before, after = image.before or {}, image.after or {}
    return {column: value for column, value in before.items() if after.get(column) != value}


def _inverse(group: list[RowImage]) -> list[Operation]:
    first = group[0]
    if first.kind == "delete":
        return [
            InsertOperation(
                table=image.table,
                values=[Assignment(column=column, value=value) for column, value in (image.before or {}).items()],
            )
            for image in group
        ]
    filters = _key_filters(group)
    if first.kind == "insert":
        return [DeleteOperation(table=first.table, filters=filters)]
    changed = _changed_before(first)
    if not changed:  # the original set the values the rows already held: nothing to put back
        return []
    values = [Assignment(column=column, value=value) for column, value in changed.items()]
    return [UpdateOperation(table=first.table, values=values, filters=filters)]


def _key_filters(group: list[RowImage]) -> list[Filter]:
    if len(group) == 1:
        return [Filter(column=column, op=FilterOperator.EQ, value=value) for column, value in group[0].row_key.items()]
    (column,) = group[0].row_key
    keys = [image.row_key[column] for image in group]
    return [Filter(column=column, op=FilterOperator.IN, value=keys)]


# ---------------------------------------------------------------- conflicts


async def find_conflicts(connection: AsyncConnection, metadata: MetaData, change: Change) -> list[RowConflict]:
    """Every row whose values now differ from how the original left it."""
    first: dict[tuple[str, str], RowImage] = {}
    last: dict[tuple[str, str], RowImage] = {}
    for image in change.images:
        row = (image.table, key_of(list(image.row_key.values())))
        first.setdefault(row, image)
        last[row] = image
    conflicts = []
    for (table_name, key), image in last.items():
        table = metadata.tables[table_name]
        now = await _current_row(connection, table, image.row_key)
        if now != image.after:
            before = first[(table_name, key)].before
            conflicts.append(RowConflict(table=table_name, key=key, before=before, after=image.after, now=now))
    return conflicts


async def _current_row(
    connection: AsyncConnection, table: Table, row_key: dict[str, Scalar]
) -> dict[str, Scalar] | None:
    condition = and_(*(table.c[column] == coerce_value(table.c[column], value) for column, value in row_key.items()))
    row = (await connection.execute(select(table).where(condition))).mappings().first()
    return row_to_dict(row) if row is not None else None


def masked_conflicts(conflicts: list[RowConflict], policy: Policy, metadata: MetaData) -> list[RowConflict]:
    """Conflicts with private columns masked: approvers see that a private value changed, not what it holds."""
    shown = []
    for conflict in conflicts:
        private = set(policy.private_columns(conflict.table, metadata.tables[conflict.table].columns.keys()))
        shown.append(
            conflict.model_copy(
                update={side: _masked(getattr(conflict, side), private) for side in ("before", "after", "now")}
            )
        )
    return shown


def _masked(row: dict[str, Scalar] | None, private: set[str]) -> dict[str, Scalar] | None:
    if row is None:
        return None
    return {name: MASK if name in private and value is not None else value for name, value in row.items()}


def unrevertable(change: Change, metadata: MetaData) -> str | None:
    """Why the images cannot be put back at all (a table gone, values that cannot be restored), or None."""
    for name in sorted({image.table for image in change.images}):
        table = metadata.tables.get(name)
        if table is None:
            return f"table {name} no longer exists in the target DB"
        binary = [column.name for column in table.columns if isinstance(column.type, LargeBinary)]
        if binary:
            return f"table {name} has binary column(s) {', '.join(binary)}, whose values undo does not keep"
    return None


# ---------------------------------------------------------------- judging a revert plan


def revert_check(change: Change, reverts: RevertOf, conflicts: list[RowConflict]) -> RevertCheck:
    return RevertCheck(
        reverts=reverts.workflow_id,
        original_requester=change.requester,
        original_approvals=len(change.approved_by),
        conflicts=conflicts,
        include_conflicts=reverts.include_conflicts,
    )


class RevertActivities:
    """The revert planner: registered on the workflow queue, beside the target DB it reads."""

    def __init__(self, target_engine: AsyncEngine, *, revert_window: timedelta = DEFAULT_WINDOW) -> None:
        self._target = target_engine
        self._window = revert_window

    @activity.defn(name=ACTIVITY_PLAN_REVERT)
    async def plan_revert(self, input: PlanRevertInput) -> RevertPlan:
        label = ticket_label(input.ticket_id)
        metadata = await reflect_target(self._target)
        async with self._target.connect() as connection:
            change = await load_change(connection, input.reverts.workflow_id)
        problem = refusal(change, input.reverts.workflow_id, datetime.now(UTC), self._window)
        if problem is None and change is not None:
            problem = unrevertable(change, metadata)
        if problem is not None or change is None:
            logger.info("%s: cannot revert: %s", label, problem)
            return RevertPlan(refusal=problem or "nothing to revert")
        try:
            plan = inverse_plan(change)
        except ValueError as error:
            return RevertPlan(refusal=f"{ticket_label(short_id_from(change.workflow_id))} cannot be reverted: {error}")
        logger.info("%s: revert plan of %d operation(s) for %s", label, len(plan.operations), change.workflow_id)
        return RevertPlan(plan=plan)
