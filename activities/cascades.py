"""Foreign keys, of any table, that make the database change their own rows when a target table's rows change.

Read from the catalog when the schema is reflected, not from the reflection: the referring table may
live in another schema, and SQLAlchemy reflects neither SQLite's key actions nor keys it cannot
resolve (red team 39). A key on a generated column changes whenever the columns it is computed from
do, so it counts as derived: any update of the table may reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CASCADING = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}  # PostgreSQL's codes, and their words


@dataclass(frozen=True)
class Cascade:
    """Another table's foreign key on this one that changes that table's rows when these change or go."""

    table: str  # the table whose rows refer to this one's
    columns: frozenset[str]  # this table's columns they refer to, lower-cased
    on_update: str = ""  # "CASCADE", "SET NULL" or "SET DEFAULT"; "" when an update leaves its rows alone
    on_delete: str = ""
    derived: bool = False  # a referred column is generated from others: any update may change it


Cascades = dict[str, tuple[Cascade, ...]]

_POSTGRES_CASCADES = text(
    "SELECT p.relname, k.conrelid::regclass::text, k.confupdtype::text, k.confdeltype::text, "
    "ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = k.confrelid AND a.attnum = ANY(k.confkey)), "
    "EXISTS(SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.confrelid AND a.attnum = ANY(k.confkey) "
    "AND a.attgenerated <> '') "
    "FROM pg_constraint k JOIN pg_class p ON p.oid = k.confrelid "
    "WHERE k.contype = 'f' AND (k.confupdtype IN ('c', 'n', 'd') OR k.confdeltype IN ('c', 'n', 'd')) "
    "AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :schema)"
)


async def read_cascades(connection: AsyncConnection) -> Cascades:
    """Per referred table of the reflected schema, the keys on it whose actions change other rows."""
    if connection.dialect.name == "postgresql":
        rows = await connection.execute(_POSTGRES_CASCADES, {"schema": connection.dialect.default_schema_name})
        found = [
            (
                referred,
                Cascade(referring, _lower(columns), CASCADING.get(update, ""), CASCADING.get(delete, ""), derived),
            )
            for referred, referring, update, delete, columns, derived in rows
        ]
    elif connection.dialect.name == "sqlite":
        found = await _sqlite_cascades(connection)
    else:
        found = []
    grouped: dict[str, set[Cascade]] = {}
    for referred, cascade in found:
        grouped.setdefault(referred, set()).add(cascade)
    return {name: tuple(sorted(cascades, key=repr)) for name, cascades in grouped.items()}


async def _sqlite_cascades(connection: AsyncConnection) -> list[tuple[str, Cascade]]:
    """Every table's keys from `PRAGMA foreign_key_list`, the referred table matched without regard to case."""
    tables = [
        name for (name,) in await connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]
    named = {name.lower(): name for name in tables}
    found = []
    for table in tables:
        keys: dict[int, list[Any]] = {}
        for row in await connection.exec_driver_sql(f"PRAGMA foreign_key_list({_quoted(table)})"):
            keys.setdefault(row[0], []).append(row)
        for rows in keys.values():
            referred = named.get(str(rows[0][2]).lower())
            update, delete = (_sqlite_action(rows[0][5]), _sqlite_action(rows[0][6]))
            if referred is None or not (update or delete):
                continue
            columns = [row[4] for row in rows if row[4] is not None] or await _sqlite_key(connection, referred)
            generated = await _sqlite_generated(connection, referred)
            derived = bool(generated & _lower(columns))
            found.append((referred, Cascade(table, _lower(columns), update, delete, derived)))
    return found


def _sqlite_action(action: object) -> str:
    word = str(action or "").upper()
    return word if word in CASCADING.values() else ""


async def _sqlite_key(connection: AsyncConnection, table: str) -> list[str]:
    """The primary key's columns: what a key naming only the table refers to."""
    rows: list[Any] = list(await connection.exec_driver_sql(f"PRAGMA table_info({_quoted(table)})"))
    return [row[1] for row in sorted((row for row in rows if row[5]), key=lambda row: row[5])]


async def _sqlite_generated(connection: AsyncConnection, table: str) -> frozenset[str]:
    rows: list[Any] = list(await connection.exec_driver_sql(f"PRAGMA table_xinfo({_quoted(table)})"))
    return frozenset(str(row[1]).lower() for row in rows if row[6] in (2, 3))  # hidden: 2 virtual, 3 stored


def _lower(columns: Sequence[str]) -> frozenset[str]:
    return frozenset(str(column).lower() for column in columns)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
