"""Gathering context: the schema the planner may use, the rows a ticket names, the requester's history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, Table, text
from temporalio.testing import ActivityEnvironment

from activities.audit import AuditActivities
from activities.context import (
    MAX_ROWS_PER_MATCH,
    ContextActivities,
    bound_context,
    context_size,
    find_mentions,
    row_counts,
)
from core.bootstrap import Databases
from core.ledger import LEDGER_TABLE
from core.models import (
    AuditEntry,
    AuditEventKind,
    GatherContextInput,
    NamedRows,
    PastTicket,
    RecordEventInput,
    RecordEventsInput,
    Scalar,
    TicketContext,
    TicketRequest,
)

TABLES = ["plans", "customers", "users", "subscriptions", "invoices", "feature_flags"]


async def _gather(dbs: Databases, text: str, requester: str = "U1", ticket_id: str = "now") -> TicketContext:
    activities = ContextActivities(dbs.app_sessions, dbs.app_reads, dbs.target_reads)
    request = TicketRequest(text=text, requester=requester)
    context: TicketContext = await ActivityEnvironment().run(
        activities.gather_context, GatherContextInput(ticket_id=ticket_id, request=request)
    )
    return context


def _rows(context: TicketContext, table: str) -> list[dict[str, Scalar]]:
    return [row for named in context.named_rows if named.table == table for row in named.rows]


# ---------------------------------------------------------------- finding references in text


def test_mentions_ids_by_table_noun_and_bare() -> None:
    mentions = find_mentions("Move customer 12 and user #7 to invoice id 3; see #99", TABLES)
    assert mentions.ids == {"customers": {12}, "users": {7}, "invoices": {3}, "*": {99}}
    assert find_mentions("feature flag 5 and customer_id=4", TABLES).ids == {"feature_flags": {5}, "customers": {4}}


def test_mentions_emails_slugs_and_names() -> None:
    mentions = find_mentions("Make Bob@Acme-Corp.example an admin of acme-corp (Acme Corp), not Globex.", TABLES)
    assert mentions.emails == {"bob@acme-corp.example"}
    assert {"acme-corp", "globex"} <= mentions.slugs
    assert {"acme corp", "globex"} <= mentions.names
    assert not any("@" in name for name in mentions.names)


# ---------------------------------------------------------------- the activity


async def test_schema_lists_policy_tables_with_keys_and_never_the_ledger(dbs: Databases) -> None:
    context = await _gather(dbs, "hello")
    names = [table.name for table in context.schema_tables]
    assert names == sorted(TABLES)
    assert LEDGER_TABLE not in names and "tickets" not in names  # app tables share the PostgreSQL DB
    users = next(table for table in context.schema_tables if table.name == "users")
    columns = {column.name: column for column in users.columns}
    assert columns["id"].primary_key and not columns["email"].primary_key
    assert columns["customer_id"].foreign_key == "customers.id"
    assert "INT" in columns["id"].type.upper() and "VARCHAR" in columns["email"].type.upper()
    assert users.row_count is not None and users.row_count > 40


async def test_slug_finds_the_customer_and_rows_that_refer_to_it(dbs: Databases) -> None:
    context = await _gather(dbs, "upgrade acme-corp to the pro plan")
    [acme] = _rows(context, "customers")
    assert (acme["id"], acme["name"], acme["slug"]) == (1, "Acme Corp", "acme-corp")
    assert isinstance(acme["created_at"], str)  # JSON-friendly
    subscription = [row for row in _rows(context, "subscriptions") if row["customer_id"] == 1]
    assert len(subscription) == 1 and subscription[0]["plan_id"] == 2
    assert {"id": 3, "name": "pro", "price_cents": 9900, "max_seats": 50} in _rows(context, "plans")
    assert not context.truncated or context_size(context) <= 64 * 1024


async def test_name_email_and_id_find_rows(dbs: Databases) -> None:
    by_name = await _gather(dbs, "Please pause Wonka Foods")
    assert [row["slug"] for row in _rows(by_name, "customers")] == ["wonka-foods"]
    by_email = await _gather(dbs, "make carol@acme-corp.example an admin")
    assert [row["id"] for row in _rows(by_email, "users") if row["email"] == "carol@acme-corp.example"] == [2]
    by_id = await _gather(dbs, "customer 12 wants an invoice refund")
    assert [row["name"] for row in _rows(by_id, "customers")] == ["Aperture Science"]


async def test_same_row_named_twice_is_listed_once(dbs: Databases) -> None:
    context = await _gather(dbs, "acme-corp aka Acme Corp aka customer 1")
    assert [named.table for named in context.named_rows].count("customers") == 1


async def test_hostile_text_is_only_a_value(dbs: Databases) -> None:
    context = await _gather(dbs, "acme-corp'; DROP TABLE customers; -- and ' OR 1=1 --")
    assert len(_rows(context, "customers")) == 1
    again = await _gather(dbs, "globex")
    assert len(_rows(again, "customers")) == 1  # the table is still there


async def test_matches_are_capped_and_marked_truncated(dbs: Databases) -> None:
    context = await _gather(dbs, "turn sso on")  # 40 customers have an `sso` flag
    [sso] = [named for named in context.named_rows if named.table == "feature_flags" and "sso" in named.match]
    assert len(sso.rows) == MAX_ROWS_PER_MATCH
    assert context.truncated


async def test_requesters_earlier_tickets_and_audit(dbs: Databases) -> None:
    audit = AuditActivities(dbs.app_transactions)
    for ticket_id, requester in (("old1", "U1"), ("other", "U2"), ("now", "U1")):
        request = TicketRequest(text=f"ticket {ticket_id}", requester=requester)
        event = RecordEventInput(
            ticket_id=ticket_id, kind=AuditEventKind.SUBMITTED, summary="submitted", request=request
        )
        await ActivityEnvironment().run(audit.record_events, RecordEventsInput(events=[event]))
    context = await _gather(dbs, "hello", requester="U1", ticket_id="now")
    assert [ticket.ticket_id for ticket in context.past_tickets] == ["old1"]
    assert [(entry.ticket_id, entry.kind) for entry in context.recent_audit] == [("old1", "submitted")]


def test_bound_context_cuts_to_size_and_says_so() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    big = TicketContext(
        named_rows=[NamedRows(table="users", match=f"m{i}", rows=[{"note": "x" * 300}] * 20) for i in range(20)],
        past_tickets=[PastTicket(ticket_id=str(i), text="y" * 300, status="done", created_at=now) for i in range(10)],
        recent_audit=[
            AuditEntry(ticket_id=str(i), kind="submitted", summary="z" * 300, created_at=now) for i in range(20)
        ],
    )
    assert context_size(big) > 64 * 1024
    bounded = bound_context(big, 64 * 1024)
    assert context_size(bounded) <= 64 * 1024 and bounded.truncated
    assert bounded.named_rows[0] == big.named_rows[0]  # the first matches survive
    # No more is dropped than measuring the whole document after every removal would drop.
    measured = big.model_copy(deep=True, update={"truncated": True})
    for items in (measured.recent_audit, measured.past_tickets, measured.named_rows, measured.schema_tables):
        while items and context_size(measured) > 64 * 1024:
            items.pop()
    assert bounded == measured
    assert bound_context(TicketContext(), 64 * 1024) == TicketContext()


async def test_large_postgres_tables_are_estimated_not_scanned(pg_databases: Databases) -> None:
    """At or above the threshold the count is PostgreSQL's estimate (as of the last ANALYZE): no scan per ticket."""
    probe = Table("count_probe", MetaData(), Column("id", Integer, primary_key=True))
    async with pg_databases.target_engine.connect() as connection:  # rolled back: the table never exists for others
        await connection.run_sync(probe.metadata.create_all)
        await connection.execute(text("INSERT INTO count_probe SELECT generate_series(1, 50)"))
        await connection.execute(text("ANALYZE count_probe"))
        await connection.execute(text("INSERT INTO count_probe SELECT generate_series(51, 60)"))
        estimated = await connection.run_sync(row_counts, [probe], exact_below=50)
        counted = await connection.run_sync(row_counts, [probe], exact_below=51)
        await connection.rollback()
    assert estimated == {"count_probe": 50}  # what ANALYZE saw, not the 60 rows there are now
    assert counted == {"count_probe": 60}


async def test_sqlite_tables_are_counted_exactly(databases: Databases) -> None:
    probe = Table("count_probe", MetaData(), Column("id", Integer, primary_key=True))
    async with databases.target_engine.connect() as connection:
        await connection.run_sync(probe.metadata.create_all)
        await connection.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) "
                "INSERT INTO count_probe SELECT i FROM n"
            )
        )
        assert await connection.run_sync(row_counts, [probe], exact_below=1) == {"count_probe": 60}
        await connection.rollback()
