"""Running a plan's operations in order on one connection, naming every row each one touches.

The dry run (`activities/dry_run.py`) and the execution (`activities/execution.py`) both run
plans through `PlanRunner`, so the row keys an approval covers and the keys execution compares
with them are computed the same way: from the rows each statement itself reports
(`RETURNING`), never from a separate count that a concurrent writer could make stale.

A row the plan inserts gets the key `new:<operation index>` wherever the plan touches it, in the
dry run and at execution alike, because the database may assign it a different id each time.

Every write also reports each row's full values before and after it: the dry run shows them to
approvers, and execution keeps them as the before-images that undo puts back. An update reads
its rows first (locking them where the database can), so the images are the rows it changed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.sql import (
    AnyOperation,
    SqlCompileError,
    assigned_values,
    column_for,
    row_to_dict,
    table_for,
    where_clause,
)
from core.models import DeleteOperation, InsertOperation, Scalar, SelectOperation, UpdateOperation

NEW_ROW_PREFIX = "new:"
# A key longer than this (a long text primary key, or a table keyed by all its columns) is named by a
# digest: keys travel in the report and the approval, which must fit in workflow history (red team 25).
MAX_KEY_CHARS = 64
DIGEST_PREFIX = "sha256:"


@dataclass
class StepOutcome:
    """What one operation did: the keys it touched and, when asked for, the rows' values."""

    index: int
    operation: AnyOperation
    keys: list[str] = field(default_factory=list)  # sorted (`sort_keys`), each once
    rows: list[dict[str, Scalar]] = field(default_factory=list)  # a select's rows, as returned
    # Key → the full row before (updates, deletes) and after (inserts, updates), in key order.
    before: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    after: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    # Key → the primary key's real values (a new row's key is symbolic: `new:<index>`).
    primary_keys: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    # For an update or delete: a digest of the rows as they were, in the columns it does not set
    # (in every column, for a revert). The same keys with another version mean the rows were
    # changed (or a key reused) since they were judged.
    version: str = ""

    @property
    def rows_affected(self) -> int:
        return len(self.rows) if isinstance(self.operation, SelectOperation) else len(self.keys)

    @property
    def written(self) -> bool:
        return not isinstance(self.operation, SelectOperation)


def sort_keys(keys: Iterable[str]) -> list[str]:
    """Keys once each, numbers in numeric order (`2` before `10`), new rows last."""
    return sorted(set(keys), key=lambda key: (key.startswith(NEW_ROW_PREFIX), len(key), key))


def key_of(values: Sequence[Any]) -> str:
    """A string that tells a row from every other: an integer key as itself (`12`), any other as JSON
    that keeps its type (`"acme"`, `null`, `{"bytes":"<digest>"}`), several columns as a JSON list, and a
    long one as a digest.

    Spelled through `to_scalar`, different rows had shared a key: every binary key of one length, a
    NULL and the text 'None', integer 1 and text '1' in a column SQLite gives no type; the rows then
    counted and were approved as one (red team 29). Nothing spelled this way starts like a digest or
    a new row's name (`new:0`), so those cannot be forged either (red team 28).
    """
    if len(values) == 1 and isinstance(values[0], int) and not isinstance(values[0], bool):
        key = str(values[0])
    else:
        typed = [_typed(value) for value in values]
        key = json.dumps(typed[0] if len(typed) == 1 else typed, separators=(",", ":"), ensure_ascii=False)
    if len(key) > MAX_KEY_CHARS:
        return DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]
    return key


def _typed(value: Any) -> Any:
    """A key's value as JSON keeps it apart from values of other types."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, bytes | bytearray | memoryview):  # often a secret's hash: named, not spelled out
        return {"bytes": hashlib.sha256(bytes(value)).hexdigest()[:32]}
    return {type(value).__name__: str(value)}


def _has_null(values: Sequence[Any]) -> bool:
    return any(value is None for value in values)


def key_columns(table: Table) -> list[Column[Any]]:
    """The primary key; a table without one cannot have its rows named and is refused for writes."""
    columns = list(table.primary_key.columns)
    return columns or list(table.columns)


class PlanRunner:
    """Runs operations one after the other on `connection`, in the caller's transaction.

    `every_column`: versions cover the columns an update sets too. A revert needs that: it must
    not overwrite a value someone wrote after it was approved. Another plan sets its values
    whatever they were, so a concurrent write of the same column does not undo its approval.
    """

    def __init__(self, connection: AsyncConnection, metadata: MetaData, *, every_column: bool = False) -> None:
        self._connection = connection
        self._metadata = metadata
        self._every_column = every_column
        self._new_rows: dict[tuple[str, str], str] = {}  # (table, key the DB gave) → new:<index>

    async def run(self, index: int, operation: AnyOperation) -> StepOutcome:
        table = table_for(self._metadata, operation.table)
        outcome = StepOutcome(index=index, operation=operation)
        if isinstance(operation, SelectOperation):
            await self._select(table, operation, outcome)
        elif isinstance(operation, InsertOperation):
            await self._insert(table, operation, outcome)
        else:
            await self._change(table, operation, outcome)
        return outcome

    def _key(self, table: Table, row: Mapping[Any, Any]) -> str:
        key = key_of([row[column.name] for column in key_columns(table)])
        return self._new_rows.get((table.name, key), key)

    async def _select(self, table: Table, operation: SelectOperation, outcome: StepOutcome) -> None:
        requested = [column_for(table, name) for name in operation.columns] or list(table.columns)
        keys = [column for column in key_columns(table) if column not in requested]
        query = select(*requested, *keys)
        condition = where_clause(table, operation.filters)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*key_columns(table)).limit(operation.limit)
        names = [column.name for column in requested]
        for row in (await self._connection.execute(query)).mappings():
            outcome.keys.append(self._key(table, row))
            outcome.rows.append(row_to_dict({name: row[name] for name in names}))
        outcome.keys = sort_keys(outcome.keys)

    async def _insert(self, table: Table, operation: InsertOperation, outcome: StepOutcome) -> None:
        result = await self._connection.execute(
            insert(table).values(assigned_values(table, operation)).returning(*table.columns)
        )
        row = result.mappings().one()
        symbolic = f"{NEW_ROW_PREFIX}{outcome.index}"
        values = [row[column.name] for column in key_columns(table)]
        if _has_null(values):  # SQLite lets a text key be NULL: such a row could not be told from others
            raise SqlCompileError(f"the row inserted into {table.name} has no key (NULL); give it one")
        self._new_rows[(table.name, key_of(values))] = symbolic
        outcome.keys = [symbolic]
        outcome.after = {symbolic: row_to_dict(row)}
        outcome.primary_keys = {symbolic: _primary_key(table, row)}

    async def _change(self, table: Table, operation: UpdateOperation | DeleteOperation, outcome: StepOutcome) -> None:
        condition = where_clause(table, operation.filters)
        if condition is None:  # the safety rules block this; execution must never run it either
            raise SqlCompileError(f"{operation.kind} on {table.name} has no filter")
        if isinstance(operation, UpdateOperation):
            # The rows as they were: locked until the transaction ends, so the update changes exactly these.
            before = select(table).where(condition).order_by(*key_columns(table)).with_for_update()
            was = {self._key(table, row): row for row in (await self._connection.execute(before)).mappings()}
            statement: Any = update(table).values(assigned_values(table, operation)).where(condition)
        else:
            statement = delete(table).where(condition)
        rows = (await self._connection.execute(statement.returning(*table.columns))).mappings().all()
        keyed = {self._key(table, row): row for row in rows}
        if len(keyed) != len(rows) or any(_has_null([row[c.name] for c in key_columns(table)]) for row in rows):
            # Rows an approval cannot name one by one (NULL or repeated keys) would count and pass as fewer.
            raise SqlCompileError(f"{operation.kind} on {table.name} touches rows that have no key of their own")
        if isinstance(operation, DeleteOperation):
            was = keyed
        outcome.keys = sort_keys(list(keyed))
        outcome.before = {key: row_to_dict(was[key]) for key in outcome.keys if key in was}
        if isinstance(operation, UpdateOperation):
            outcome.after = {key: row_to_dict(keyed[key]) for key in outcome.keys}
        outcome.primary_keys = {key: _primary_key(table, keyed[key]) for key in outcome.keys}
        assigned = set() if self._every_column or isinstance(operation, DeleteOperation) else _set_by(operation)
        columns = [column.name for column in table.columns if column.name not in assigned]
        # A row this plan inserted is its own: the values the DB gave it (a sequence's next id, a
        # default of now()) differ between the dry run and execution, and no one else can change it.
        versioned: dict[str, Mapping[Any, Any]] = {
            key: {} if key.startswith(NEW_ROW_PREFIX) else was.get(key, {}) for key in keyed
        }
        outcome.version = rows_version(versioned, columns)


def _set_by(operation: UpdateOperation | DeleteOperation) -> set[str]:
    return {item.column for item in operation.values} if isinstance(operation, UpdateOperation) else set()


def _primary_key(table: Table, row: Mapping[Any, Any]) -> dict[str, Scalar]:
    return row_to_dict({column.name: row[column.name] for column in key_columns(table)})


def rows_version(keyed: Mapping[str, Mapping[Any, Any]], columns: Sequence[str]) -> str:
    """A short digest of rows (by key) in `columns`: equal for the same rows holding the same values."""
    material = [[key, [str(row.get(name)) for name in columns]] for key, row in sorted(keyed.items())]
    return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()[:16]
