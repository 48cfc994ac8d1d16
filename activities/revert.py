"""Undo: the inverse plan of an executed ticket, built from its before-images, and its checks.

The planner "revert" asks no LLM: the plan is a function of the images alone, in reverse order.
An update is put back to its values before, a deleted row is inserted again with its old primary
key, and an inserted row is deleted by its key. Judging a revert (the safety activity) builds the
plan again from the images and refuses any other, then compares each row with how the original
left it: a row changed since is a conflict, shown before, after and now, and blocks the revert
unless it was asked to overwrite conflicts.

The images keep private values in the target DB, so the plan that goes into the ticket's history
carries `MASK` where a private column gets its old value back; the dry run and the execution fill
those in from the images (`filled_from_images`), which never change, so an approval of the plan
as shown is an approval of exactly what runs.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import ARRAY, JSON, LargeBinary, MetaData, PickleType, Table, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity

from activities.before_images import Change, Lineage, RowImage, load_change, refusal
from activities.plan_runner import key_of
from activities.planning import within_size
from activities.sql import coerce_value, forget_reflection, reflect_target, row_to_dict
from activities.to_the_end import run_to_the_end
from core.masking import MASK
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    Finding,
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
from core.policy import Policy, PolicyCache

logger = logging.getLogger(__name__)

# Column types whose values a plan (scalars only) cannot carry exactly: a table with one cannot be reverted.
_NOT_SCALAR = (LargeBinary, JSON, ARRAY, PickleType)

PLANNER = "revert"
CHANGED_PRIVATE = f"{MASK} (changed since)"  # a private value someone changed after the original ran
QUOTED_PREFIX = 8  # a message quoting this much of a hidden value (a shortened quote) is replaced whole
DEFAULT_WINDOW = timedelta(days=7)


def inverse_plan(change: Change, private: Mapping[str, Collection[str]] | None = None) -> Plan:
    """The operations that put every row `change` touched back as it was, last change first.

    Rows one operation changed to the same values are put back by one operation (`in` on a
    single-column key); a plan too long for one ticket raises ValueError saying so. Values of
    `private` columns (per table) are written as `MASK`.
    """
    label = ticket_label(short_id_from(change.workflow_id))
    rows = len({(image.table, key_of(list(image.row_key.values()))) for image in change.images})
    try:
        operations: list[Operation] = []
        for group in _groups_in_reverse(change.images):
            operations.extend(_inverse(group, set((private or {}).get(group[0].table, ()))))
        return Plan(
            summary=f"Revert {label}: put {rows} row(s) back as they were before it ran",
            rationale=f"Built from {label}'s before-images, last change first; no LLM was asked.",
            operations=operations,
            planner=PLANNER,
        )
    except ValidationError as error:  # words only: the input may be a private value
        problem = error.errors(include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in problem["loc"] if not isinstance(part, int))
        raise ValueError(f"its inverse cannot be written as a plan ({where or 'plan'}: {problem['msg']})") from None


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


def _inverse(group: list[RowImage], private: set[str]) -> list[Operation]:
    first = group[0]
    if first.kind == "delete":
        return [InsertOperation(table=image.table, values=_assignments(image.before or {}, private)) for image in group]
    filters = _key_filters(group)
    if first.kind == "insert":
        return [DeleteOperation(table=first.table, filters=filters)]
    changed = _changed_before(first)
    if not changed:  # the original set the values the rows already held: nothing to put back
        return []
    return [UpdateOperation(table=first.table, values=_assignments(changed, private), filters=filters)]


def _assignments(values: dict[str, Scalar], private: set[str]) -> list[Assignment]:
    return [
        Assignment(column=column, value=MASK if column in private and value is not None else value)
        for column, value in values.items()
    ]


def filled_from_images(plan: Plan, change: Change) -> Plan | None:
    """`plan` with each `MASK` replaced by the value the images hold, or None if it is not their inverse."""
    real = inverse_plan(change)
    if len(real.operations) != len(plan.operations):
        return None
    for shown, actual in zip(plan.operations, real.operations, strict=True):
        if shown.kind != actual.kind or shown.table != actual.table:
            return None
        if getattr(shown, "filters", None) != getattr(actual, "filters", None):
            return None
        shown_values = getattr(shown, "values", [])
        actual_values = getattr(actual, "values", [])
        if [item.column for item in shown_values] != [item.column for item in actual_values]:
            return None
        if any(a.value != b.value and a.value != MASK for a, b in zip(shown_values, actual_values, strict=True)):
            return None
    return real


def _key_filters(group: list[RowImage]) -> list[Filter]:
    if len(group) == 1:
        return [Filter(column=column, op=FilterOperator.EQ, value=value) for column, value in group[0].row_key.items()]
    (column,) = group[0].row_key
    keys = [image.row_key[column] for image in group]
    return [Filter(column=column, op=FilterOperator.IN, value=keys)]


def hidden_values(shown: Plan, runs: Plan) -> list[str]:
    """The values `runs` puts back where `shown` says MASK, as text: what no finding may quote."""
    hidden = []
    for masked, actual in zip(shown.operations, runs.operations, strict=True):
        for a, b in zip(getattr(masked, "values", []), getattr(actual, "values", []), strict=True):
            if a.value == MASK and b.value is not None and str(b.value) != MASK:
                hidden.append(str(b.value))
    return hidden


def without_hidden_values(findings: list[Finding], hidden: list[str]) -> list[Finding]:
    """Findings whose words quote a hidden value (whole, or the start of a long one) say MASK instead."""
    cleaned = []
    for finding in findings:
        message = finding.message
        for value in sorted(hidden, key=len, reverse=True):
            message = message.replace(value, MASK)
            if len(value) >= QUOTED_PREFIX and value[:QUOTED_PREFIX] in message:
                message = f"A private value this revert would put back breaks rule {finding.rule}."
        cleaned.append(finding.model_copy(update={"message": message}))
    return cleaned


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
        now = _masked(conflict.now, private)
        if now is not None and conflict.now is not None and conflict.after is not None:
            for name in private & conflict.now.keys():
                if conflict.now[name] != conflict.after.get(name):
                    now[name] = CHANGED_PRIVATE
        update = {"before": _masked(conflict.before, private), "after": _masked(conflict.after, private), "now": now}
        shown.append(conflict.model_copy(update=update))
    return shown


def _masked(row: dict[str, Scalar] | None, private: set[str]) -> dict[str, Scalar] | None:
    if row is None:
        return None
    return {name: MASK if name in private and value is not None else value for name, value in row.items()}


def private_columns(change: Change, policy: Policy, metadata: MetaData) -> dict[str, list[str]]:
    """The private columns of each table the change touched (tables still in the target DB)."""
    names = {image.table for image in change.images if image.table in metadata.tables}
    return {name: policy.private_columns(name, metadata.tables[name].columns.keys()) for name in names}


def unrevertable(change: Change, metadata: MetaData) -> str | None:
    """Why the images cannot be put back at all (a table gone, values that cannot be restored), or None."""
    for name in sorted({image.table for image in change.images}):
        table = metadata.tables.get(name)
        if table is None:
            return f"table {name} no longer exists in the target DB"
        kept_inexactly = [column.name for column in table.columns if isinstance(column.type, _NOT_SCALAR)]
        if kept_inexactly:
            return (
                f"table {name} has column(s) {', '.join(kept_inexactly)} of a binary, JSON or array type, "
                "whose values undo cannot put back exactly"
            )
        imaged = {column for image in change.images if image.table == name for column in image.columns}
        if imaged != set(table.columns.keys()):
            return f"table {name}'s columns changed since it ran, so its rows cannot be put back exactly"
    return None


# ---------------------------------------------------------------- judging a revert plan


def revert_check(change: Change, family: Lineage, reverts: RevertOf, conflicts: list[RowConflict]) -> RevertCheck:
    return RevertCheck(
        reverts=reverts.workflow_id,
        original_requester=change.requester,
        original_approvals=family.most_approvals,
        excluded=family.requesters,
        conflicts=conflicts,
        include_conflicts=reverts.include_conflicts,
    )


class RevertActivities:
    """The revert planner: registered on the workflow queue, beside the target DB it reads."""

    def __init__(
        self, target_engine: AsyncEngine, policy: PolicyCache, *, revert_window: timedelta = DEFAULT_WINDOW
    ) -> None:
        self._target = target_engine
        self._policy = policy
        self._window = revert_window

    @activity.defn(name=ACTIVITY_PLAN_REVERT)
    async def plan_revert(self, input: PlanRevertInput) -> RevertPlan:
        return await run_to_the_end(self._plan_revert(input))

    async def _plan_revert(self, input: PlanRevertInput) -> RevertPlan:
        label = ticket_label(input.ticket_id)
        forget_reflection(self._target)  # the columns as they are now: a table altered since must be seen
        metadata = await reflect_target(self._target)
        async with self._target.connect() as connection:
            change = await load_change(connection, input.reverts.workflow_id)
        problem = refusal(change, input.reverts.workflow_id, datetime.now(UTC), self._window)
        if problem is None and change is not None:
            problem = unrevertable(change, metadata)
        if problem is not None or change is None:
            logger.info("%s: cannot revert: %s", label, problem)
            return RevertPlan(refusal=problem or "nothing to revert")
        policy = await self._policy.current()
        try:
            inverse_plan(change)  # the plan that runs, with every value: it must be a valid plan too
            plan = inverse_plan(change, private_columns(change, policy, metadata))
        except ValueError as error:
            return RevertPlan(refusal=f"{ticket_label(short_id_from(change.workflow_id))} cannot be reverted: {error}")
        logger.info("%s: revert plan of %d operation(s) for %s", label, len(plan.operations), change.workflow_id)
        return RevertPlan(plan=within_size(label, plan))  # every step's answer must fit in history (red team 28)
