"""Execute a plan, revert it: every row it touched is back as it was, column by column, on SQLite and PostgreSQL.

Plans are given (`TicketRequest.proposed_plan`, the MCP door's path) so every operation kind and
mix can be tried; they then pass the same safety check and approvals as any plan. Whole tables
are compared before the plan and after its revert, as the driver returns them (Decimal, datetime,
date, bool, None), so a value put back in another type or precision, a row left behind or a row
missing fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from temporalio.testing import WorkflowEnvironment

from core.demo import feature_flags, invoices, users
from core.models import (
    Assignment,
    DeleteOperation,
    Filter,
    FilterOperator,
    InsertOperation,
    Operation,
    Plan,
    UpdateOperation,
)
from core.names import workflow_id_for
from tests.pipeline import Pipeline
from tests.undo.support import (
    BACKENDS,
    add_probe,
    ledger_row,
    probes,
    proposed,
    revert_done,
    run_done,
    snapshot,
    undo_pipeline,
    unique_label,
)


@pytest.fixture(scope="module", params=BACKENDS)
async def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, local_env: WorkflowEnvironment
) -> AsyncIterator[Pipeline]:
    async with undo_pipeline(request.param, tmp_path_factory.mktemp("undo-round-trip"), local_env.client) as running:
        yield running


def _set(**values: object) -> list[Assignment]:
    return [Assignment(column=column, value=value) for column, value in values.items()]  # type: ignore[arg-type]


def _eq(column: str, value: object) -> list[Filter]:
    return [Filter(column=column, op=FilterOperator.EQ, value=value)]  # type: ignore[arg-type]


@dataclass(frozen=True)
class Ids:
    """Rows a case may touch: probes made for it, and demo rows."""

    first: int
    second: int
    label: str  # for a probe the plan inserts


def _update_every_type(ids: Ids) -> list[Operation]:
    """Every column to a new value: values to NULL, NULL to values, and across the types."""
    return [
        UpdateOperation(
            table=probes.name,
            values=_set(
                note=None,
                amount="-0.0001",
                ratio=None,
                flag=False,
                due_on="2026-01-01",
                seen_at="2026-06-15T08:00:00+02:00",
                local_at=None,
            ),
            filters=_eq("id", ids.first),
        ),
        UpdateOperation(
            table=probes.name,
            values=_set(
                note="was null", amount=99, ratio=1e-300, flag=True, due_on="2000-02-29", local_at="1999-12-31T23:59:59"
            ),
            filters=_eq("id", ids.second),
        ),
    ]


def _insert(ids: Ids) -> list[Operation]:
    return [
        InsertOperation(
            table=probes.name,
            values=_set(
                label=ids.label,
                note="new",
                amount="0.5",
                ratio=2.5,
                flag=None,
                due_on="2025-07-04",
                seen_at="2025-07-04T00:00:00Z",
            ),
        )
    ]


def _delete(ids: Ids) -> list[Operation]:
    return [DeleteOperation(table=probes.name, filters=_eq("id", ids.second))]


def _mixed(ids: Ids) -> list[Operation]:
    """Insert, update it, two updates of one row, then delete that row; and a delete of another."""
    return [
        InsertOperation(table=probes.name, values=_set(label=ids.label, amount="1.25")),
        UpdateOperation(
            table=probes.name, values=_set(note="set after insert", flag=False), filters=_eq("label", ids.label)
        ),
        UpdateOperation(table=probes.name, values=_set(amount="7.0001", note=None), filters=_eq("id", ids.first)),
        UpdateOperation(table=probes.name, values=_set(flag=False, seen_at=None), filters=_eq("id", ids.first)),
        DeleteOperation(table=probes.name, filters=_eq("id", ids.first)),
        DeleteOperation(table=probes.name, filters=_eq("id", ids.second)),
    ]


def _demo_tables(ids: Ids) -> list[Operation]:
    """The shipped tables: an update with datetimes, an insert with a server default, a delete of a flag."""
    return [
        UpdateOperation(
            table=invoices.name, values=_set(status="void", due_at="2030-01-01T00:00:00Z"), filters=_eq("id", 3)
        ),
        InsertOperation(
            table=users.name,
            values=_set(
                customer_id=1, email=f"{ids.label}@acme-corp.example", name="Probe", role="viewer", active=False
            ),
        ),
        UpdateOperation(table=users.name, values=_set(active=False), filters=_eq("id", 2)),
        DeleteOperation(table=feature_flags.name, filters=_eq("id", 1)),
    ]


CASES: dict[str, Callable[[Ids], list[Operation]]] = {
    "update": _update_every_type,
    "insert": _insert,
    "delete": _delete,
    "mixed": _mixed,
    "demo_tables": _demo_tables,
}


@pytest.mark.parametrize("case", list(CASES))
async def test_execute_then_revert_puts_every_row_back(pipeline: Pipeline, case: str) -> None:
    engine = pipeline.databases.target_engine
    first = await add_probe(engine, unique_label(case))
    second = await add_probe(engine, unique_label(case), note=None, amount=None, ratio=None, flag=None, seen_at=None)
    ids = Ids(first, second, unique_label(f"{case}_new"))
    operations = CASES[case](ids)
    tables = [probes, invoices, users, feature_flags]
    before = await snapshot(engine, tables)

    original, done = await run_done(pipeline, proposed(pipeline, Plan(summary=f"undo {case}", operations=operations)))
    changed = await snapshot(engine, tables)
    assert changed != before, "the plan changed nothing: the revert would prove nothing"
    assert done.execution is not None and done.execution.rows_changed > 0

    revert, reverted = await revert_done(pipeline, original)
    assert reverted.execution is not None and reverted.execution.rows_changed > 0
    after = await snapshot(engine, tables)
    for table in tables:
        assert after[table.name] == before[table.name], f"{table.name} differs after the revert of {case}"

    revert_status = await pipeline.service.status(revert)
    assert revert_status.plan is not None and revert_status.plan.planner == "revert"
    ledger = await ledger_row(engine, workflow_id_for(original))
    assert ledger is not None and ledger["reverted_by"] == revert_status.workflow_id
