"""The `gather_context` activity: what the planner may see about a ticket, bounded in size.

The requester's earlier tickets and their audit trail come from the app DB; the target DB
gives its schema (only tables the policy lists, never the ledger) and the rows the ticket
text names by id, email, slug or name, plus rows that refer to them, with private values
redacted unless the ticket text holds them (`activities/redaction.py`). The result goes into
workflow history, so it is capped (`MAX_CONTEXT_BYTES`) and marked `truncated` when cut.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Column, Connection, ScalarSelect, Table, func, select, text
from sqlalchemy import types as sa_types
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.redaction import redact_named_rows
from activities.sql import reflect_target, row_to_dict, type_name
from core.ledger import is_ledger_table
from core.models import (
    AuditEntry,
    ColumnInfo,
    GatherContextInput,
    NamedRows,
    PastTicket,
    Scalar,
    TableInfo,
    TicketContext,
)
from core.names import ACTIVITY_GATHER_CONTEXT, short_id_from, ticket_label
from core.policy import PolicyCache
from core.reads import ReadRunner
from core.schema import AuditEventRow, TicketRow

logger = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 64 * 1024
MAX_ROWS_PER_MATCH = 20
MAX_ROWS_PER_QUERY = 100
MAX_RELATED_ENTITIES = 3
MAX_PAST_TICKETS = 10
MAX_AUDIT_ENTRIES = 20
MAX_TEXT_CHARS = 300
MAX_CANDIDATES = 400
MAX_NGRAM = 4
# Tables PostgreSQL estimates at this many rows or more are not counted exactly on each ticket.
EXACT_COUNT_BELOW = 100_000

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_BARE_ID = re.compile(r"(?:#|\bid\s*[=:#]?\s*)(\d{1,18})\b", re.IGNORECASE)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*[a-z0-9]$")
_EDGE_PUNCTUATION = ".,;:!?()[]{}\"'`<>"


# ---------------------------------------------------------------- what the text names


@dataclass
class Mentions:
    """Candidate references found in ticket text, to be looked up with bound parameters."""

    ids: dict[str, set[int]] = field(default_factory=dict)  # table name → ids ("*" for any table)
    emails: set[str] = field(default_factory=set)
    slugs: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


def _nouns(table: str) -> list[str]:
    singular = table[:-1] if table.endswith("s") else table
    return list(dict.fromkeys([table, singular, table.replace("_", " "), singular.replace("_", " ")]))


def find_mentions(text: str, tables: Iterable[str]) -> Mentions:
    """Ids (`customer 12`, `#12`), emails, slug-like tokens and 1-4 word phrases in `text`."""
    mentions = Mentions()
    rest = text
    for table in tables:
        nouns = "|".join(re.escape(noun) for noun in sorted(_nouns(table), key=len, reverse=True))
        pattern = re.compile(rf"\b(?:{nouns})\s*(?:_?id\s*)?[#:=]?\s*(\d{{1,18}})\b", re.IGNORECASE)
        found = {int(match.group(1)) for match in pattern.finditer(text)}
        if found:
            mentions.ids[table] = found
            rest = pattern.sub(" ", rest)
    bare = {int(match.group(1)) for match in _BARE_ID.finditer(rest)}
    if bare:
        mentions.ids["*"] = bare
    mentions.emails = {match.group(0).lower() for match in _EMAIL.finditer(text)}
    without_emails = _EMAIL.sub(" ", text)
    words = [word.strip(_EDGE_PUNCTUATION) for word in without_emails.split()]
    words = [word for word in words if word]
    mentions.slugs = {word.lower() for word in words if _SLUG.match(word.lower())}
    phrases: list[str] = []
    for size in range(1, MAX_NGRAM + 1):
        phrases.extend(" ".join(words[start : start + size]).lower() for start in range(len(words) - size + 1))
    mentions.names = set(list(dict.fromkeys(phrases))[:MAX_CANDIDATES])
    mentions.slugs = set(sorted(mentions.slugs)[:MAX_CANDIDATES])
    return mentions


def _text_columns(table: Table, *, suffix: str) -> list[Column[object]]:
    """String columns named `<suffix>` or `*_<suffix>` (e.g. `email`, `billing_email`)."""
    return [
        column
        for column in table.columns
        if isinstance(column.type, sa_types.String) and (column.name == suffix or column.name.endswith(f"_{suffix}"))
    ]


def _integer_key(table: Table) -> Column[object] | None:
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and isinstance(keys[0].type, sa_types.Integer):
        return keys[0]
    return None


# ---------------------------------------------------------------- looking rows up


@dataclass
class _Lookup:
    named: list[NamedRows] = field(default_factory=list)
    seen_rows: set[tuple[str, tuple[object, ...]]] = field(default_factory=set)
    entities: list[tuple[Table, object, str]] = field(default_factory=list)  # table, key value, how it was named
    truncated: bool = False


def _match_rows(
    connection: Connection, table: Table, column: Column[object], values: Sequence[object], lookup: _Lookup
) -> None:
    """Rows whose `column` equals one of `values` (case-insensitive for text), grouped by value."""
    if not values:
        return
    is_text = isinstance(column.type, sa_types.String)
    compared = func.lower(column) if is_text else column
    query = select(table).where(compared.in_(list(values))).order_by(*table.primary_key.columns)
    rows = [dict(row) for row in connection.execute(query.limit(MAX_ROWS_PER_QUERY + 1)).mappings()]
    if len(rows) > MAX_ROWS_PER_QUERY:
        lookup.truncated = True
        rows = rows[:MAX_ROWS_PER_QUERY]
    groups: dict[object, list[dict[str, object]]] = {}
    for row in rows:
        value = row[column.name]
        groups.setdefault(value.lower() if is_text and isinstance(value, str) else value, []).append(row)
    key = _integer_key(table)
    for value, group in groups.items():
        identities = {(table.name, _row_key(table, row)) for row in group}
        if identities <= lookup.seen_rows:  # already named another way (e.g. by slug and by name)
            continue
        lookup.seen_rows |= identities
        match = f"{column.name} = {value}"
        if len(group) > MAX_ROWS_PER_MATCH:
            lookup.truncated = True
        bounded = [_bounded(row) for row in group[:MAX_ROWS_PER_MATCH]]
        lookup.named.append(NamedRows(table=table.name, match=match, rows=bounded))
        if len(group) == 1 and key is not None:
            lookup.entities.append((table, group[0][key.name], f"{table.name} {match}"))


def _related_rows(connection: Connection, tables: Sequence[Table], lookup: _Lookup) -> None:
    """Rows in other tables that refer to the first few named entities (e.g. a customer's subscription)."""
    seen: set[tuple[str, object]] = set()
    for table, key_value, named_as in lookup.entities:
        if (table.name, key_value) in seen:
            continue
        seen.add((table.name, key_value))
        if len(seen) > MAX_RELATED_ENTITIES:
            break
        for other in tables:
            for foreign_key in other.foreign_keys:
                if foreign_key.column.table.name != table.name or not foreign_key.column.primary_key:
                    continue
                column = foreign_key.parent
                query = select(other).where(column == key_value).order_by(*other.primary_key.columns)
                result = connection.execute(query.limit(MAX_ROWS_PER_MATCH + 1))
                rows = [dict(row) for row in result.mappings()]
                if not rows:
                    continue
                if len(rows) > MAX_ROWS_PER_MATCH:
                    lookup.truncated = True
                match = f"{column.name} = {key_value} (refers to {named_as})"
                bounded = [_bounded(row) for row in rows[:MAX_ROWS_PER_MATCH]]
                lookup.named.append(NamedRows(table=other.name, match=match, rows=bounded))


def _row_key(table: Table, row: dict[str, object]) -> tuple[object, ...]:
    keys = list(table.primary_key.columns) or list(table.columns)
    return tuple(row[column.name] for column in keys)


def _bounded(row: dict[str, object]) -> dict[str, Scalar]:
    values = row_to_dict(row)
    return {key: value[:MAX_TEXT_CHARS] if isinstance(value, str) else value for key, value in values.items()}


def find_named_rows(connection: Connection, tables: Sequence[Table], text: str) -> _Lookup:
    """Every row the text names, in the order: ids, emails, slugs, names; then rows referring to them."""
    mentions = find_mentions(text, [table.name for table in tables])
    lookup = _Lookup()
    for table in tables:
        key = _integer_key(table)
        ids = mentions.ids.get(table.name, set()) | mentions.ids.get("*", set())
        if key is not None and ids:
            _match_rows(connection, table, key, sorted(ids), lookup)
    for suffix, candidates in (("email", mentions.emails), ("slug", mentions.slugs), ("name", mentions.names)):
        for table in tables:
            for column in _text_columns(table, suffix=suffix):
                _match_rows(connection, table, column, sorted(candidates), lookup)
    _related_rows(connection, tables, lookup)
    return lookup


# ---------------------------------------------------------------- schema and history


def describe_tables(
    connection: Connection, tables: Sequence[Table], *, exact_below: int = EXACT_COUNT_BELOW
) -> list[TableInfo]:
    """Columns, types, keys and (about how many) rows of the tables the planner may use."""
    counts = row_counts(connection, tables, exact_below=exact_below)
    return [
        TableInfo(
            name=table.name,
            columns=[
                ColumnInfo(
                    name=column.name,
                    type=type_name(column, connection.dialect),
                    nullable=bool(column.nullable),
                    primary_key=column.primary_key,
                    foreign_key=next((key.target_fullname for key in column.foreign_keys), None),
                )
                for column in table.columns
            ],
            row_count=counts[table.name],
        )
        for table in tables
    ]


def row_counts(
    connection: Connection, tables: Sequence[Table], *, exact_below: int = EXACT_COUNT_BELOW
) -> dict[str, int]:
    """Rows per table: PostgreSQL's own estimate for tables it knows to be large, an exact count otherwise.

    Counting exactly scans the table, on every ticket; the planner only needs the size's order.
    """
    estimates = _postgres_estimates(connection, tables) if connection.dialect.name == "postgresql" else {}
    counts = {name: estimate for name, estimate in estimates.items() if estimate >= exact_below}
    to_count = [table for table in tables if table.name not in counts]
    if to_count:
        row = connection.execute(select(*(_row_count(table) for table in to_count))).one()
        counts.update({table.name: int(count or 0) for table, count in zip(to_count, row, strict=True)})
    return counts


def _postgres_estimates(connection: Connection, tables: Sequence[Table]) -> dict[str, int]:
    """`pg_class.reltuples` (kept by ANALYZE and autovacuum; -1 for a table never analyzed)."""
    result = connection.execute(
        text(
            "SELECT c.relname, c.reltuples FROM pg_class c "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :schema) "
            "AND c.relkind IN ('r', 'p') "
            "AND c.relname = ANY(:names)"
        ),
        # The schema the tables were reflected from (activities/sql.py).
        {"names": [table.name for table in tables], "schema": connection.dialect.default_schema_name},
    )
    return {name: int(estimate) for name, estimate in result if estimate is not None and estimate >= 0}


def _row_count(table: Table) -> ScalarSelect[int]:
    return select(func.count()).select_from(table).scalar_subquery()


def requester_history(
    connection: Connection, requester: str, ticket_id: str
) -> tuple[list[PastTicket], list[AuditEntry]]:
    """The requester's latest other tickets and the latest audit events on them."""
    # Plain column rows, not ORM objects: only a few fields are read, and loading entities cost more CPU.
    tickets = connection.execute(
        select(TicketRow.ticket_id, TicketRow.text, TicketRow.status, TicketRow.created_at)
        .where(TicketRow.requester == requester, TicketRow.ticket_id != ticket_id)
        .order_by(TicketRow.created_at.desc())
        .limit(MAX_PAST_TICKETS)
    )
    past = [
        PastTicket(
            ticket_id=row.ticket_id, text=row.text[:MAX_TEXT_CHARS], status=row.status, created_at=row.created_at
        )
        for row in tickets
    ]
    events = connection.execute(
        select(
            AuditEventRow.ticket_id,
            AuditEventRow.kind,
            AuditEventRow.actor,
            AuditEventRow.summary,
            AuditEventRow.created_at,
        )
        .join(TicketRow, TicketRow.ticket_id == AuditEventRow.ticket_id)
        .where(TicketRow.requester == requester, TicketRow.ticket_id != ticket_id)
        .order_by(AuditEventRow.created_at.desc(), AuditEventRow.id.desc())
        .limit(MAX_AUDIT_ENTRIES)
    )
    audit = [
        AuditEntry(
            ticket_id=row.ticket_id,
            kind=row.kind,
            actor=row.actor,
            summary=row.summary[:MAX_TEXT_CHARS],
            created_at=row.created_at,
        )
        for row in events
    ]
    return past, audit


# ---------------------------------------------------------------- size bound


def context_size(context: TicketContext) -> int:
    return len(context.model_dump_json().encode())


def bound_context(context: TicketContext, max_bytes: int = MAX_CONTEXT_BYTES) -> TicketContext:
    """Drop the least useful parts until the serialized context fits in `max_bytes`.

    Order: oldest audit entries, oldest earlier tickets, the last named-row groups (rows that
    refer to named rows come last), then schema tables from the end.
    """
    if context_size(context) <= max_bytes:
        return context
    bounded = context.model_copy(deep=True)
    bounded.truncated = True
    size = context_size(bounded)
    for items in (bounded.recent_audit, bounded.past_tickets, bounded.named_rows, bounded.schema_tables):
        while items and size > max_bytes:
            # The item's JSON leaves the document, and with it the comma before it if others remain.
            size -= len(items.pop().model_dump_json().encode()) + (1 if items else 0)
    return bounded


# ---------------------------------------------------------------- the activity


class ContextActivities:
    """Gathers a ticket's context; receives the app DB session factory and both databases' read runners.

    Each database's reads run whole in one `ReadRunner.read` (`core/reads.py`), the two side by side.
    """

    def __init__(
        self, app_sessions: async_sessionmaker[AsyncSession], app_reads: ReadRunner, target_reads: ReadRunner
    ) -> None:
        self._policy = PolicyCache(app_sessions)
        self._app_reads = app_reads
        self._target_reads = target_reads

    @activity.defn(name=ACTIVITY_GATHER_CONTEXT)
    async def gather_context(self, input: GatherContextInput) -> TicketContext:
        ticket_id = short_id_from(input.ticket_id)
        label = ticket_label(ticket_id)
        policy = await self._policy.current()
        metadata = await reflect_target(self._target_reads.engine)
        tables = [
            metadata.tables[name]
            for name in sorted(policy.tables)
            if name in metadata.tables and not is_ledger_table(name)
        ]
        text = input.request.text

        def read_target(connection: Connection) -> tuple[list[TableInfo], _Lookup]:
            return describe_tables(connection, tables), find_named_rows(connection, tables, text)

        (past, audit), (schema, lookup) = await asyncio.gather(
            self._app_reads.read(lambda connection: requester_history(connection, input.request.requester, ticket_id)),
            self._target_reads.read(read_target),
        )
        private = {table.name: policy.private_columns(table.name, table.columns.keys()) for table in tables}
        for info in schema:
            for column in info.columns:
                column.private = column.name in private[info.name]
        named, redacted = redact_named_rows(lookup.named, private, text)
        context = TicketContext(
            schema_tables=schema,
            named_rows=named,
            past_tickets=past,
            recent_audit=audit,
            truncated=lookup.truncated,
            redacted=redacted,
        )
        context = bound_context(context)
        logger.info("%s: context gathered: %s", label, context.summary())  # says "(truncated)" when cut
        return context
