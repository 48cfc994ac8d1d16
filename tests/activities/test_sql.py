"""Compiling plan operations: names checked against the target, values coerced and bound."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql

from activities.sql import (
    AnyOperation,
    SqlCompileError,
    coerce_value,
    compile_operation,
    count_query,
    forget_reflection,
    is_transient_db_error,
    preview_query,
    reflect_target,
    row_to_dict,
    to_scalar,
)
from core.bootstrap import Databases
from core.demo import customers, demo_metadata, invoices, subscriptions, users
from core.ledger import LEDGER_TABLE
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    SelectOperation,
    UpdateOperation,
)


def _update(table: str, values: dict[str, Any], *filters: Filter) -> UpdateOperation:
    return UpdateOperation(
        table=table, values=[Assignment(column=k, value=v) for k, v in values.items()], filters=list(filters)
    )


def _count_sql(metadata: MetaData, operation: Any) -> tuple[str, dict[str, Any]]:
    query = count_query(metadata, operation)
    assert query is not None
    compiled = query.compile(dialect=postgresql.dialect())
    return str(compiled), dict(compiled.params)


def test_unknown_table_and_column_are_refused() -> None:
    with pytest.raises(SqlCompileError, match="unknown table 'accounts'"):
        compile_operation(demo_metadata, SelectOperation(table="accounts"))
    with pytest.raises(SqlCompileError, match=r"unknown column 'tier' in table 'customers'"):
        compile_operation(demo_metadata, _update("customers", {"tier": "gold"}, Filter(column="id", op="eq", value=1)))
    with pytest.raises(SqlCompileError, match="unknown column 'owner'"):
        compile_operation(demo_metadata, DeleteOperation(table="users", filters=[Filter(column="owner", op="eq")]))


def test_ledger_table_is_refused_even_when_reflected() -> None:
    metadata = MetaData()
    for table in demo_metadata.tables.values():
        table.to_metadata(metadata)
    from core.ledger import executions

    executions.to_metadata(metadata)
    with pytest.raises(SqlCompileError, match="ledger of agent-ticket"):
        compile_operation(metadata, DeleteOperation(table=LEDGER_TABLE, filters=[Filter(column="plan_hash", op="ne")]))


def test_values_are_bound_parameters_never_sql_text() -> None:
    hostile = "x'; DROP TABLE customers; --"
    sql, params = _count_sql(
        demo_metadata, DeleteOperation(table="customers", filters=[Filter(column="slug", op="eq", value=hostile)])
    )
    assert "DROP" not in sql
    assert hostile in params.values()


@pytest.mark.parametrize(
    ("op", "value", "expected_sql"),
    [
        (FilterOperator.EQ, 3, "customers.id = "),
        (FilterOperator.NE, 3, "customers.id != "),
        (FilterOperator.LT, 3, "customers.id < "),
        (FilterOperator.LE, 3, "customers.id <= "),
        (FilterOperator.GT, 3, "customers.id > "),
        (FilterOperator.GE, 3, "customers.id >= "),
        (FilterOperator.IN, [1, 2], "customers.id IN "),
        (FilterOperator.IS_NULL, None, "customers.id IS NULL"),
        (FilterOperator.NOT_NULL, None, "customers.id IS NOT NULL"),
    ],
)
def test_each_operator_compiles(op: FilterOperator, value: Any, expected_sql: str) -> None:
    sql, _ = _count_sql(
        demo_metadata, SelectOperation(table="customers", filters=[Filter(column="id", op=op, value=value)])
    )
    assert expected_sql in sql


def test_like_needs_text_column_and_pattern() -> None:
    sql, params = _count_sql(
        demo_metadata, SelectOperation(table="customers", filters=[Filter(column="slug", op="like", value="a%")])
    )
    assert "customers.slug LIKE" in sql and "a%" in params.values()
    with pytest.raises(SqlCompileError, match="text column"):
        compile_operation(
            demo_metadata, SelectOperation(table="customers", filters=[Filter(column="id", op="like", value="1%")])
        )
    with pytest.raises(SqlCompileError, match="text pattern"):
        compile_operation(
            demo_metadata, SelectOperation(table="customers", filters=[Filter(column="slug", op="like", value=3)])
        )


def test_filters_are_joined_with_and() -> None:
    sql, _ = _count_sql(
        demo_metadata,
        _update(
            "users",
            {"role": "viewer"},
            Filter(column="customer_id", op="eq", value=1),
            Filter(column="role", op="eq", value="member"),
        ),
    )
    assert "users.customer_id = " in sql and " AND users.role = " in sql


def test_values_are_coerced_to_the_column_type() -> None:
    assert coerce_value(subscriptions.c.plan_id, "3") == 3
    assert coerce_value(subscriptions.c.plan_id, 3.0) == 3
    assert coerce_value(users.c.active, "false") is False
    assert coerce_value(users.c.active, 1) is True
    assert coerce_value(customers.c.slug, 42) == "42"
    moment = coerce_value(invoices.c.due_at, "2025-02-01T10:00:00Z")
    assert moment == datetime(2025, 2, 1, 10, 0, tzinfo=UTC)
    assert coerce_value(invoices.c.due_at, "2025-02-01") == datetime(2025, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (subscriptions.c.plan_id, "pro", "expected an integer"),
        (subscriptions.c.plan_id, True, "not a boolean"),
        (subscriptions.c.plan_id, 2.5, "expected an integer"),
        (users.c.active, "maybe", "true or false"),
        (invoices.c.due_at, "next tuesday", r"does not fit column invoices\.due_at"),
        (invoices.c.due_at, 5, "ISO 8601"),
        (customers.c.status, "x" * 21, "longer than 20"),
    ],
)
def test_values_that_do_not_fit_are_refused(column: Any, value: Any, message: str) -> None:
    with pytest.raises(SqlCompileError, match=message):
        coerce_value(column, value)


def test_assignments_refuse_null_into_not_null_and_duplicates() -> None:
    with pytest.raises(SqlCompileError, match="cannot be NULL"):
        compile_operation(demo_metadata, _update("customers", {"status": None}, Filter(column="id", op="eq", value=1)))
    twice = UpdateOperation(
        table="customers",
        values=[Assignment(column="status", value="a"), Assignment(column="status", value="b")],
        filters=[Filter(column="id", op="eq", value=1)],
    )
    with pytest.raises(SqlCompileError, match="more than once"):
        compile_operation(demo_metadata, twice)


def test_filter_value_shapes() -> None:
    with pytest.raises(SqlCompileError, match="not a list"):
        compile_operation(
            demo_metadata, SelectOperation(table="customers", filters=[Filter(column="id", op="eq", value=[1, 2])])
        )
    with pytest.raises(SqlCompileError, match="needs a value"):
        compile_operation(demo_metadata, SelectOperation(table="customers", filters=[Filter(column="id", op="gt")]))
    with pytest.raises(SqlCompileError, match="expected an integer"):
        compile_operation(
            demo_metadata, SelectOperation(table="customers", filters=[Filter(column="id", op="in", value=[1, "two"])])
        )


def test_preview_selects_key_and_touched_columns_only() -> None:
    query = preview_query(
        demo_metadata, _update("subscriptions", {"plan_id": 3}, Filter(column="customer_id", op="eq", value=1))
    )
    assert query is not None
    assert [column.name for column in query.selected_columns] == ["id", "plan_id"]
    assert preview_query(demo_metadata, SelectOperation(table="plans")) is None
    assert (
        count_query(demo_metadata, InsertOperation(table="plans", values=[Assignment(column="name", value="x")]))
        is None
    )


async def test_compiled_statements_count_the_right_rows(databases: Databases) -> None:
    metadata = await reflect_target(databases.target_engine)
    cases: dict[int, AnyOperation] = {
        2: SelectOperation(table="customers", filters=[Filter(column="id", op="in", value=[1, 2, 99])]),
        1: SelectOperation(table="customers", filters=[Filter(column="slug", op="like", value="acme%")]),
        4: DeleteOperation(table="feature_flags", filters=[Filter(column="customer_id", op="eq", value="1")]),
        0: SelectOperation(table="customers", filters=[Filter(column="billing_email", op="is_null")]),
        40: SelectOperation(table="customers", filters=[Filter(column="created_at", op="ge", value="2025-01-01")]),
    }
    async with databases.target_engine.connect() as connection:
        for expected, operation in cases.items():
            query = count_query(metadata, operation)
            assert query is not None
            assert await connection.scalar(query) == expected, operation


async def test_reflection_is_cached_per_engine(databases: Databases) -> None:
    first = await reflect_target(databases.target_engine)
    assert await reflect_target(databases.target_engine) is first
    assert {"customers", "users", LEDGER_TABLE} <= set(first.tables)
    forget_reflection(databases.target_engine)
    assert await reflect_target(databases.target_engine) is not first


def test_to_scalar_makes_db_values_json_friendly() -> None:
    assert to_scalar(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00+00:00"
    from decimal import Decimal

    assert to_scalar(Decimal("12.50")) == 12.5
    assert to_scalar(Decimal("12")) == 12
    assert to_scalar(Decimal("98765432109876.5432")) == "98765432109876.5432"  # more digits than a float holds
    assert to_scalar(b"abc") == "<3 bytes>"
    assert [to_scalar(Decimal(word)) for word in ("Infinity", "-Infinity", "NaN", "sNaN")] == [
        "Infinity",
        "-Infinity",
        "NaN",
        "sNaN",
    ]


async def test_postgres_numeric_infinity_and_nan_read_as_words(pg_databases: Databases) -> None:
    """PostgreSQL 14+ numeric holds them; converting to an int raised OverflowError (and sNaN compares raise)."""
    query = text("SELECT 'Infinity'::numeric AS up, '-Infinity'::numeric AS down, 'NaN'::numeric AS odd")
    row = await pg_databases.target_reads.read(lambda connection: connection.execute(query).mappings().one())
    assert row_to_dict(row) == {"up": "Infinity", "down": "-Infinity", "odd": "NaN"}


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"pg error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (sa_exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked")), True),
        (sa_exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("no such column: x")), False),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (sa_exc.DBAPIError("UPDATE", {}, _PgError("40001")), True),
        (sa_exc.DBAPIError("UPDATE", {}, _PgError("40P01")), True),
        (sa_exc.DBAPIError("UPDATE", {}, _PgError("08006")), True),
        (sa_exc.DBAPIError("INSERT", {}, _PgError("23505")), False),
        (sa_exc.DBAPIError("UPDATE", {}, _PgError("22P02")), False),
        (ConnectionResetError("reset by peer"), True),
        (ValueError("bad"), False),
    ],
)
def test_transient_errors_are_told_apart(error: BaseException, transient: bool) -> None:
    assert is_transient_db_error(error) is transient
