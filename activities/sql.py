"""Compile typed plan operations into SQLAlchemy Core statements with bound parameters.

Operations come from an LLM, so nothing here ever builds SQL text: tables and columns are
looked up in metadata reflected from the target DB (unknown names are refused), and every
value is coerced to its column's type and bound as a parameter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Insert,
    MetaData,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sa_types
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from activities.cascades import read_cascades
from core.ledger import is_ledger_table
from core.models import (
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Plan,
    Scalar,
    SelectOperation,
    UpdateOperation,
)

logger = logging.getLogger(__name__)

AnyOperation = SelectOperation | InsertOperation | UpdateOperation | DeleteOperation
Statement = Select[Any] | Insert | Update | Delete

MAX_IN_VALUES = 1000
PREVIEW_ROWS = 5
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}


class SqlCompileError(ValueError):
    """An operation names a table or column the target lacks, or a value its column cannot hold."""


# ---------------------------------------------------------------- reflection


@dataclass(frozen=True)
class _Reflected:
    metadata: MetaData

    @property
    def shapes(self) -> Mapping[str, str]:
        """What each table's shape was when reflected (`_shapes`), kept with the metadata."""
        shapes: Mapping[str, str] = self.metadata.info[SHAPES]
        return shapes


# `MetaData.info` keys: the shapes its tables had when it was reflected; the keys that cascade onto them.
SHAPES = "agent_ticket_shapes"
CASCADES = "agent_ticket_cascades"


_cache: weakref.WeakKeyDictionary[Engine, _Reflected] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


async def reflect_target(engine: AsyncEngine, tables: Collection[str] = ()) -> MetaData:
    """The target's tables as reflected once per engine; reflecting on every call is slow.

    With `tables` (a plan being judged), their shape in the catalog is read first (one query), and
    the schema is reflected again if any changed since: a migration, a column added or dropped, a new
    key, a table that others now inherit from. A plan is judged on the tables as they are (red team
    32: a table inherited from after the worker started passed as plain). The execution runs on the
    schema it was judged on and needs no such read: it checks in its transaction that the rows it
    touches are the ones approved, which a schema changed since would alter (more rows, other keys).
    """
    key = engine.sync_engine
    for _ in range(MAX_REFLECTIONS):
        cached = _cache.get(key) or await _reflect(engine)
        if not tables:
            return cached.metadata
        # Checked even when just reflected, by this call or another one it waited for: a change can
        # land between another call's reflection and this plan's (red team 38).
        async with engine.connect() as connection:
            now = await _shapes(connection, tables)
        if all(cached.shapes.get(name, "") == now.get(name, "") for name in {*tables, *now}):
            return cached.metadata
        _forget_if_still(key, cached)
    raise SchemaUnsettled(
        "the target's tables kept changing while they were read, or their names now reach tables of another "
        "schema than the worker read (search_path); retry after the migration, or restart the worker"
    )


MAX_REFLECTIONS = 3


class SchemaUnsettled(RuntimeError):
    """The shape of a plan's tables differed from a fresh reflection's each time."""


async def shapes_digest(connection: AsyncConnection, tables: Collection[str]) -> str:
    """A digest of the plan's tables' shapes as the catalog has them now, in the caller's transaction.

    Read after a plan's statements, which hold their tables' locks: a migration that one of them
    waited for is in it (red team 38: a dry run that waited for an ALTER ran on the altered table).
    """
    return _digest(await _shapes(connection, tables), tables)


def judged_shapes_digest(metadata: MetaData, tables: Collection[str]) -> str:
    """The same digest for the shapes `metadata` was reflected with: equal when it is the schema as it is."""
    return _digest(metadata.info.get(SHAPES, {}), tables)


def _digest(shapes: Mapping[str, str], tables: Collection[str]) -> str:
    material = [[name, shapes.get(name, "")] for name in sorted({*tables, EVERY_TABLE})]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:16]


async def _reflect(engine: AsyncEngine) -> _Reflected:
    """The whole schema read once, by one call at a time; a call that waited takes the one just read."""
    key = engine.sync_engine
    async with _locks.setdefault(key, asyncio.Lock()):
        cached = _cache.get(key)
        if cached is not None:
            return cached
        metadata = MetaData()
        async with engine.connect() as connection:
            # Read before reflecting: a change in between then shows as a change at the next check.
            shapes = await _shapes(connection, None)
            await connection.run_sync(metadata.reflect)
            if connection.dialect.name == "postgresql":
                for name in await _inherited_tables(connection):
                    if name in metadata.tables:
                        metadata.tables[name].info[INHERITED] = True
            metadata.info[CASCADES] = await read_cascades(connection)
        metadata.info[SHAPES] = shapes
        reflected = _cache[key] = _Reflected(metadata)
        logger.info("reflected %d tables from the target DB", len(metadata.tables))
        return reflected


def plan_tables(plan: Plan) -> set[str]:
    return {operation.table for operation in plan.operations}


def _forget_if_still(key: Engine, stale: _Reflected) -> None:
    """Drop `stale` unless another call has already reflected again."""
    if _cache.get(key) is stale:
        _cache.pop(key, None)
        logger.info("the target's schema changed since it was reflected: reflecting again")


async def _shapes(connection: AsyncConnection, tables: Collection[str] | None) -> dict[str, str]:
    """The named tables' (None: every table's) shapes as the catalog has them now; a missing table has none.

    SQLite counts every change to its schema in one number (`PRAGMA schema_version`), kept under
    `EVERY_TABLE`. PostgreSQL gets a digest per table of what reflection and the safety rules read:
    its columns (name, type, modifier, collation, nullability, default, identity, generation), its
    constraints and indexes, and how many tables inherit from it.
    """
    if connection.dialect.name == "sqlite":
        version = (await connection.exec_driver_sql("PRAGMA schema_version")).scalar_one()
        return {EVERY_TABLE: str(version)}
    if connection.dialect.name != "postgresql":
        return {}
    names = None if tables is None else sorted(set(tables))
    parameters = {"every": names is None, "names": names or [], "schema": connection.dialect.default_schema_name}
    result = await connection.execute(_POSTGRES_SHAPES, parameters)
    return {name: digest for name, digest in result}


EVERY_TABLE = "*"
# The schema reflection reads (SQLAlchemy's default schema, the connection's `current_schema()` when the engine
# first connected), by name, not `to_regnamespace`: a mixed-case schema read as an unquoted identifier (red team
# 32). Not `current_schema()` now: a schema created later under the role's name becomes that (red team 38).
_REFLECTED_SCHEMA = "(SELECT oid FROM pg_namespace WHERE nspname = :schema)"
_POSTGRES_SHAPES = text(
    "SELECT c.relname, md5(concat_ws('|', c.oid, c.relkind, "
    "(SELECT string_agg(concat_ws(':', a.attnum, a.attname, a.atttypid, a.atttypmod, a.attcollation, "
    "a.attnotnull, a.atthasdef, a.attidentity, a.attgenerated), ',' ORDER BY a.attnum) "
    "FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), "
    "(SELECT string_agg(concat_ws(':', k.conname, k.contype, array_to_string(k.conkey, ' '), k.confrelid, "
    "k.confupdtype, k.confdeltype, array_to_string(k.confkey, ' '), k.condeferrable), ',' ORDER BY k.conname) "
    "FROM pg_constraint k WHERE k.conrelid = c.oid), "
    # Other tables' keys on it, in any schema: what they do when its rows change (red team 39).
    "(SELECT string_agg(concat_ws(':', r.oid, r.conrelid, r.confupdtype, r.confdeltype, "
    "array_to_string(r.confkey, ' ')), ',' ORDER BY r.oid) FROM pg_constraint r "
    "WHERE r.contype = 'f' AND r.confrelid = c.oid), "
    "(SELECT string_agg(concat_ws(':', x.indexrelid, x.indisunique, x.indisprimary, x.indkey::text), ',' "
    "ORDER BY x.indexrelid) FROM pg_index x WHERE x.indrelid = c.oid), "
    "(SELECT count(*) FROM pg_inherits h WHERE h.inhparent = c.oid), "
    # Whether the plain name still reaches this table, not a same-named one a schema earlier on the search path.
    "coalesce(to_regclass(quote_ident(c.relname))::oid = c.oid, false))) "
    "FROM pg_class c WHERE (CAST(:every AS boolean) OR c.relname = ANY(CAST(:names AS text[]))) "
    "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    f"AND c.relnamespace = {_REFLECTED_SCHEMA}"
)


# `Table.info` flag: PostgreSQL tables inherit from it. Its queries reach their rows too, and its primary key
# does not cover them, so a key can name a row of the table and one of a child (red team 31).
INHERITED = "agent_ticket_inherited"


async def _inherited_tables(connection: AsyncConnection) -> list[str]:
    """Plain tables of the reflected schema that others inherit from (partitioned tables keep one key across
    their partitions and are not among them)."""
    result = await connection.execute(
        text(
            "SELECT DISTINCT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
            f"WHERE c.relkind = 'r' AND c.relnamespace = {_REFLECTED_SCHEMA}"
        ),
        {"schema": connection.dialect.default_schema_name},
    )
    return [name for (name,) in result]


def forget_reflection(engine: AsyncEngine) -> None:
    """Drop the cached schema of `engine`, e.g. after a migration changed the target."""
    _cache.pop(engine.sync_engine, None)


def table_for(metadata: MetaData, name: str) -> Table:
    """The reflected table `name`; the ledger and unknown tables are refused."""
    if is_ledger_table(name):
        raise SqlCompileError(f"table {name!r} is a ledger of agent-ticket and cannot be used by a plan")
    table = metadata.tables.get(name)
    if table is None:
        raise SqlCompileError(f"unknown table {name!r}")
    return table


def column_for(table: Table, name: str) -> Column[Any]:
    column = table.columns.get(name)
    if column is None:
        raise SqlCompileError(f"unknown column {name!r} in table {table.name!r}")
    return column


def type_name(column: Column[Any], dialect: Dialect | None = None) -> str:
    """The column's SQL type as the target's dialect spells it."""
    try:
        return str(column.type.compile(dialect=dialect))
    except Exception:  # a type the dialect cannot render still has a name
        return type(column.type).__name__


# ---------------------------------------------------------------- values


def coerce_value(column: Column[Any], value: Scalar) -> Any:
    """`value` as the Python type `column` stores, or `SqlCompileError` saying why not."""
    where = f"{column.table.name}.{column.name}"
    if value is None:
        return None
    column_type = column.type
    try:
        if isinstance(column_type, sa_types.Boolean):
            return _to_bool(value)
        if isinstance(column_type, sa_types.Integer):
            return _to_int(value)
        if isinstance(column_type, sa_types.Numeric):
            return _to_number(value, as_decimal=bool(getattr(column_type, "asdecimal", False)))
        if isinstance(column_type, sa_types.DateTime):
            return _to_datetime(value, aware=bool(getattr(column_type, "timezone", False)))
        if isinstance(column_type, sa_types.Date):
            return _to_date(value)
        if isinstance(column_type, sa_types.Time):
            return _to_time(value)
        if isinstance(column_type, sa_types.String):
            return _to_text(value, getattr(column_type, "length", None))
    except (TypeError, ValueError, InvalidOperation, OverflowError) as error:  # Overflow: past year 9999 in UTC
        raise SqlCompileError(f"value {value!r} does not fit column {where} ({column_type}): {error}") from None
    return value


def _to_bool(value: Scalar) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _to_int(value: Scalar) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise ValueError("expected an integer")


def _to_number(value: Scalar, *, as_decimal: bool) -> float | Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError("expected a number")
    number = Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError("expected a finite number")
    return number if as_decimal else float(number)


def _parse_iso(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _to_datetime(value: Scalar, *, aware: bool) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string")
    moment = _parse_iso(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # Naive columns hold UTC wall time (that is how the demo data and SQLite store it).
    return moment if aware else moment.replace(tzinfo=None)


def _to_date(value: Scalar) -> date:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date string")
    return date.fromisoformat(value.strip()[:10])


def _to_time(value: Scalar) -> time:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 time string")
    return time.fromisoformat(value.strip())


def _to_text(value: Scalar, length: int | None) -> str:
    if isinstance(value, bool):
        raise ValueError("expected text, not a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected text")
    text = value if isinstance(value, str) else str(value)
    if length is not None and len(text) > length:
        raise ValueError(f"longer than {length} characters")
    return text


def to_scalar(value: Any) -> Scalar:
    """A DB value as a JSON-friendly scalar for reports, context and results."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():  # PostgreSQL's numeric holds Infinity and NaN, which no int or JSON number can
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        # A decimal a float cannot hold exactly stays text: undo puts it back digit for digit.
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def row_to_dict(row: Mapping[Any, Any]) -> dict[str, Scalar]:
    return {str(key): to_scalar(value) for key, value in row.items()}


# ---------------------------------------------------------------- statements


def where_clause(table: Table, filters: Sequence[Filter]) -> ColumnElement[bool] | None:
    """The filters joined with AND (None when there are none)."""
    conditions = [_condition(table, item) for item in filters]
    if not conditions:
        return None
    return and_(*conditions)


def _condition(table: Table, item: Filter) -> ColumnElement[bool]:
    column = column_for(table, item.column)
    op = item.op
    if op is FilterOperator.IS_NULL:
        return column.is_(None)
    if op is FilterOperator.NOT_NULL:
        return column.is_not(None)
    if op is FilterOperator.IN:
        values = item.value if isinstance(item.value, list) else [item.value]
        if len(values) > MAX_IN_VALUES:
            raise SqlCompileError(f"filter on {table.name}.{column.name} lists more than {MAX_IN_VALUES} values")
        return column.in_([coerce_value(column, value) for value in values])
    if isinstance(item.value, list):
        raise SqlCompileError(f"filter {op.value!r} on {table.name}.{column.name} takes one value, not a list")
    if op is FilterOperator.LIKE:
        if not isinstance(item.value, str):
            raise SqlCompileError(f"filter 'like' on {table.name}.{column.name} needs a text pattern")
        if not isinstance(column.type, sa_types.String):
            raise SqlCompileError(f"filter 'like' needs a text column; {table.name}.{column.name} is {column.type}")
        return column.like(item.value)
    value = coerce_value(column, item.value)
    if value is None and op in (FilterOperator.EQ, FilterOperator.NE):
        return column.is_(None) if op is FilterOperator.EQ else column.is_not(None)
    if value is None:
        raise SqlCompileError(f"filter {op.value!r} on {table.name}.{column.name} needs a value")
    comparisons = {
        FilterOperator.EQ: column.__eq__,
        FilterOperator.NE: column.__ne__,
        FilterOperator.LT: column.__lt__,
        FilterOperator.LE: column.__le__,
        FilterOperator.GT: column.__gt__,
        FilterOperator.GE: column.__ge__,
    }
    # Always a bound parameter: SQLAlchemy turns a bare True/False into a literal and refuses
    # ordering against one (`enabled < false`), which reached users as a raw ArgumentError.
    return comparisons[op](bindparam(None, value, type_=column.type))  # type: ignore[no-any-return]


def assigned_values(table: Table, operation: InsertOperation | UpdateOperation) -> dict[str, Any]:
    """Column → coerced value; a column assigned twice or NULL into NOT NULL is refused."""
    values: dict[str, Any] = {}
    for assignment in operation.values:
        column = column_for(table, assignment.column)
        if column.name in values:
            raise SqlCompileError(f"column {table.name}.{column.name} is assigned more than once")
        value = coerce_value(column, assignment.value)
        if value is None and not column.nullable:
            raise SqlCompileError(f"column {table.name}.{column.name} cannot be NULL")
        values[column.name] = value
    return values


def compile_operation(metadata: MetaData, operation: AnyOperation) -> Statement:
    """The statement that runs `operation`, every value a bound parameter."""
    table = table_for(metadata, operation.table)
    if isinstance(operation, SelectOperation):
        columns = [column_for(table, name) for name in operation.columns] or list(table.columns)
        query = select(*columns)
        condition = where_clause(table, operation.filters)
        if condition is not None:
            query = query.where(condition)
        return query.order_by(*_order(table)).limit(operation.limit)
    if isinstance(operation, InsertOperation):
        return insert(table).values(assigned_values(table, operation))
    if isinstance(operation, UpdateOperation):
        values = assigned_values(table, operation)
        statement = update(table).values(values)
        condition = where_clause(table, operation.filters)
        return statement if condition is None else statement.where(condition)
    condition = where_clause(table, operation.filters)
    statement_delete = delete(table)
    return statement_delete if condition is None else statement_delete.where(condition)


def count_query(metadata: MetaData, operation: AnyOperation) -> Select[Any] | None:
    """COUNT(*) of the rows an operation reads or touches; None for an insert (one row)."""
    if isinstance(operation, InsertOperation):
        return None
    table = table_for(metadata, operation.table)
    query = select(func.count()).select_from(table)
    condition = where_clause(table, operation.filters)
    return query if condition is None else query.where(condition)


def preview_query(metadata: MetaData, operation: AnyOperation, limit: int = PREVIEW_ROWS) -> Select[Any] | None:
    """The current values of the rows an update or delete touches (key + touched columns)."""
    if not isinstance(operation, UpdateOperation | DeleteOperation):
        return None
    table = table_for(metadata, operation.table)
    keys = list(table.primary_key.columns)
    if isinstance(operation, UpdateOperation):
        touched = [column_for(table, item.column) for item in operation.values]
        columns = keys + [column for column in touched if column not in keys]
    else:
        columns = list(table.columns)
    query = select(*columns)
    condition = where_clause(table, operation.filters)
    if condition is not None:
        query = query.where(condition)
    return query.order_by(*_order(table)).limit(limit)


def _order(table: Table) -> list[Column[Any]]:
    return list(table.primary_key.columns)


# ---------------------------------------------------------------- errors


_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_SQLSTATES = {"55P03"}  # lock_not_available
# SQLite's primary result codes a retry can fix: BUSY, LOCKED, NOMEM, INTERRUPT, IOERR, FULL,
# CANTOPEN, PROTOCOL, SCHEMA. Plain SQLITE_ERROR (a missing table, a LIKE pattern too complex),
# TOOBIG, CONSTRAINT, MISMATCH, RANGE and the rest fail the same way every time.
_TRANSIENT_SQLITE_CODES = {5, 6, 7, 9, 10, 13, 14, 15, 17}
# The same told from the message, for errors that carry no result code.
_PERMANENT_MESSAGES = ("no such", "syntax", "too complex", "too big", "too large", "too many", "too deep", "overflow")


def is_transient_db_error(error: BaseException) -> bool:
    """True for failures a retry can fix (lost connection, deadlock, lock wait, server restart).

    Constraint violations, bad data, missing objects and statements the database will never
    run (a LIKE pattern too complex, a string too big) fail the same way every time.
    """
    if isinstance(error, OSError):  # includes ConnectionError and TimeoutError
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES) or sqlstate in _TRANSIENT_SQLSTATES
    sqlite_code = getattr(error.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return (sqlite_code & 0xFF) in _TRANSIENT_SQLITE_CODES
    if isinstance(error, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError):
        return False
    if isinstance(error, sa_exc.InterfaceError):
        return True
    if isinstance(error, sa_exc.OperationalError):
        message = str(error.orig).lower()
        return not any(words in message for words in _PERMANENT_MESSAGES)
    return False


def describe_db_error(error: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and links."""
    source: BaseException = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig else error
    lines = str(source).strip().splitlines()
    return lines[0] if lines else type(source).__name__


async def set_read_only(connection: AsyncConnection) -> None:
    """Make the current transaction read-only where the backend supports it (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql("SET TRANSACTION READ ONLY")
