"""Database: the execution activity on SQLite and PostgreSQL, with its statements counted.

`execute_plan` runs a 10-operation plan (selects, updates, an insert and a delete on the demo
schema) in one transaction with its ledger row, called through `ActivityEnvironment` as a
worker would call it. Every statement SQLAlchemy sends is counted with the engine's
`before_cursor_execute` event. The same is done for `validate_plan` and `gather_context`,
the other per-ticket database steps, to show where a ticket's database time goes.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from temporalio.testing import ActivityEnvironment

from activities.context import ContextActivities
from activities.execution import ExecutionActivities
from activities.safety import SafetyActivities
from bench.harness import (
    BenchResult,
    Stats,
    bench_settings,
    log,
    prepare_databases,
    run_benchmark,
    scaled,
    summarize,
    workdir,
)
from core.bootstrap import Databases
from core.models import (
    Assignment,
    DeleteOperation,
    ExecutePlanInput,
    Filter,
    FilterOperator,
    GatherContextInput,
    InsertOperation,
    Operation,
    Plan,
    SelectOperation,
    TicketRequest,
    UpdateOperation,
    ValidatePlanInput,
    plan_hash,
)
from core.settings import Settings
from tests.pipeline import REQUESTER
from tests.postgres import fresh_postgres_database

MAX_ROUND_TRIPS_PER_OPERATION = 2.0
OPERATIONS = 10
VALIDATION_TARGET_P50_MS = 20.0


def _eq(column: str, value: Any) -> Filter:
    return Filter(column=column, op=FilterOperator.EQ, value=value)


def ten_operation_plan(run: int) -> Plan:
    """Reads and writes across the demo tables; the flag it inserts it also deletes, so runs repeat."""
    flag = f"bench_{run}"
    operations: list[Operation] = [
        SelectOperation(table="customers", filters=[_eq("slug", "acme-corp")]),
        SelectOperation(table="invoices", columns=["id", "amount_cents", "status"], filters=[_eq("customer_id", 1)]),
        UpdateOperation(table="subscriptions", values=[Assignment(column="seats", value=5)], filters=[_eq("id", 1)]),
        UpdateOperation(
            table="feature_flags", values=[Assignment(column="enabled", value=True)], filters=[_eq("id", 1)]
        ),
        UpdateOperation(
            table="feature_flags", values=[Assignment(column="enabled", value=False)], filters=[_eq("id", 2)]
        ),
        UpdateOperation(table="users", values=[Assignment(column="name", value="Alice")], filters=[_eq("id", 1)]),
        InsertOperation(
            table="feature_flags",
            values=[
                Assignment(column="customer_id", value=1),
                Assignment(column="name", value=flag),
                Assignment(column="enabled", value=True),
            ],
        ),
        UpdateOperation(
            table="customers", values=[Assignment(column="status", value="active")], filters=[_eq("id", 2)]
        ),
        SelectOperation(table="plans"),
        DeleteOperation(table="feature_flags", filters=[_eq("customer_id", 1), _eq("name", flag)]),
    ]
    assert len(operations) == OPERATIONS
    return Plan(summary="benchmark plan", operations=operations, planner="bench")


class StatementCounter:
    """Counts the statements every engine of this process sends (SQLAlchemy's `before_cursor_execute`):
    the async engines' and the synchronous ones that reads and audit writes run whole on."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)


@dataclass
class Measured:
    stats: Stats
    statements_per_call: float
    cpu_ms_per_call: float  # this process's CPU (SQLAlchemy, driver, activity code): steadier than latency here


async def measure(
    call: Callable[[int], Awaitable[object]], counter: StatementCounter, runs: int, warm_up: int = 5
) -> Measured:
    """Time `call(i)` `runs` times after `warm_up` calls; statements per call on every engine."""
    for index in range(warm_up):
        await call(-1 - index)
    before = counter.count
    cpu_before = time.process_time()
    samples = []
    for index in range(runs):
        began = time.perf_counter()
        await call(index)
        samples.append(time.perf_counter() - began)
    cpu = time.process_time() - cpu_before
    statements = counter.count - before
    return Measured(summarize(samples), statements / runs, 1000 * cpu / runs)


Built = TypeVar("Built")


def context_activities(databases: Databases) -> ContextActivities:
    """The tree's context activities (trees from before the read runners took the target engine)."""
    if hasattr(databases, "target_reads"):
        return ContextActivities(databases.app_sessions, databases.app_reads, databases.target_reads)
    return ContextActivities(databases.app_sessions, databases.target_engine)  # type: ignore[arg-type,call-arg]


def with_authority(activities: Callable[..., Built], settings: Settings, *args: Any) -> Built:
    """The tree's activities, given what decides whether a plan may run where the tree has it (as under
    `agent-ticket dev`: the plans measured here come with no judgement or approvals)."""
    if "authority" not in inspect.signature(activities).parameters:
        return activities(*args)
    from activities.approvers import ConfiguredApprovers, LiteralApprovers
    from activities.authority import ExecutionAuthority

    approvers = ConfiguredApprovers(LiteralApprovers(), settings.approvers)
    if "trust" not in inspect.signature(ExecutionAuthority).parameters:  # trees before activities/trust.py
        return activities(*args, ExecutionAuthority(settings.decision_keys, True, approvers))  # type: ignore[call-arg,arg-type]
    from activities.trust import WorkerTrust

    return activities(*args, ExecutionAuthority(WorkerTrust.of(settings.decision_keys, True, approvers)))


async def measure_backend(settings: Settings, runs: int) -> dict[str, Measured]:
    await prepare_databases(settings)
    databases = Databases.open(settings)
    counter = StatementCounter()
    try:
        execution = with_authority(ExecutionActivities, settings, databases.target_engine)
        safety = with_authority(SafetyActivities, settings, databases.app_sessions, databases.target_engine)
        context = context_activities(databases)
        environment = ActivityEnvironment()
        request = TicketRequest(text="upgrade acme-corp to the pro plan", requester=REQUESTER)
        fixed_plan = ten_operation_plan(0)

        async def execute(run: int) -> object:
            plan = ten_operation_plan(run)
            approved = [0 if isinstance(op, SelectOperation) else 1 for op in plan.operations]
            workflow_id = f"ticket-bench-{uuid.uuid4().hex[:10]}"
            argument = ExecutePlanInput(
                ticket_id="bench", workflow_id=workflow_id, plan=plan, plan_hash=plan_hash(plan), approved_rows=approved
            )
            if "run_key" in ExecutePlanInput.model_fields:  # as the workflow sends it (trees from before: no claim)
                argument = argument.model_copy(update={"run_key": f"run/{uuid.uuid4().hex[:16]}"})
            # As an activity of the workflow it names: the executor refuses plans sent by another.
            ticket = ActivityEnvironment()
            ticket.info = dataclasses.replace(ticket.info, workflow_id=workflow_id)
            return await ticket.run(execution.execute_plan, argument)

        async def validate(_: int) -> object:
            return await environment.run(safety.validate_plan, ValidatePlanInput(ticket_id="bench", plan=fixed_plan))

        async def gather(_: int) -> object:
            argument = GatherContextInput(ticket_id="bench", request=request)
            return await environment.run(context.gather_context, argument)

        measured = {"execute_plan": await measure(execute, counter, runs)}
        try:
            measured["validate_plan"] = await measure(validate, counter, runs)
        except Exception as error:  # the whole-plan dry run is being rebuilt; say why, keep the other rows
            log(f"validate_plan could not be measured: {error!r}")
            VALIDATION_ERRORS.append(f"{settings.target_db_url.split(':', 1)[0]}: {error!r}")
        measured["gather_context"] = await measure(gather, counter, runs)
        return measured
    finally:
        counter.close()
        await databases.close()


VALIDATION_ERRORS: list[str] = []


def row(name: str, measured: Measured) -> str:
    return (
        f"{name} p50 {measured.stats.p50:.1f} ms, {measured.statements_per_call:.0f} statements, "
        f"{measured.cpu_ms_per_call:.1f} ms CPU"
    )


async def main() -> None:
    runs = scaled(200, 30)
    results: dict[str, dict[str, Measured]] = {}
    with workdir("database") as directory:
        sqlite = bench_settings(directory / "sqlite", "127.0.0.1:7233", "bench")
        log(f"SQLite: {runs} runs of each activity")
        results["sqlite"] = await measure_backend(sqlite, runs)
        async with fresh_postgres_database("agent_ticket_bench") as url:
            postgres = bench_settings(
                directory / "postgres", "127.0.0.1:7233", "bench", app_database_url=url, target_database_url=url
            )
            log(f"PostgreSQL: {runs} runs of each activity")
            results["postgresql"] = await measure_backend(postgres, runs)

    per_operation = {name: found["execute_plan"].statements_per_call / OPERATIONS for name, found in results.items()}
    summary = "; ".join(
        f"{name}: p50 {found['execute_plan'].stats.p50:.1f} ms per plan "
        f"(p99 {found['execute_plan'].stats.p99:.1f}), {per_operation[name]:.1f} statements per operation"
        for name, found in results.items()
    )
    BenchResult(
        key="database",
        title="Database (execute_plan, 10 operations)",
        how=(
            f"`execute_plan` through `ActivityEnvironment`, {runs} runs of a 10-operation plan (3 selects, 5 updates, "
            "an insert, a delete) on the seeded demo schema, each with its own workflow id (so each writes its "
            "ledger row); statements counted with `before_cursor_execute`. SQLite file (WAL) and a fresh "
            "PostgreSQL 15 database on 127.0.0.1 through asyncpg."
        ),
        result=summary,
        target=f"p50 per plan reported; ≤ {MAX_ROUND_TRIPS_PER_OPERATION:.0f} round trips per operation",
        met=all(value <= MAX_ROUND_TRIPS_PER_OPERATION for value in per_operation.values()),
        samples=f"{runs} plans per database, after 5 warm-up runs",
        notes=(
            "A plan's statements: 1 ledger lookup + 1 claim of its run + 1 per operation + 1 ledger insert. "
            "BEGIN and COMMIT are not cursor statements: on PostgreSQL they add 2 round trips per plan, and asyncpg "
            "prepares each new "
            "statement once per connection (cached afterwards). Other per-ticket steps: "
            + "; ".join(f"{name}: {row('gather_context', found['gather_context'])}" for name, found in results.items())
        ),
        figures={
            name: {
                step: {
                    "latency_ms": vars(measured.stats),
                    "statements_per_call": measured.statements_per_call,
                    "cpu_ms_per_call": round(measured.cpu_ms_per_call, 2),
                }
                for step, measured in found.items()
            }
            for name, found in results.items()
        },
    ).save()
    save_validation(results, runs)


def save_validation(results: dict[str, dict[str, Measured]], runs: int) -> None:
    """The dry-run validation of the same 10-operation plan: `validate_plan` as the worker runs it."""
    measured = {name: found["validate_plan"] for name, found in results.items() if "validate_plan" in found}
    complete = len(measured) == len(results) and not VALIDATION_ERRORS
    BenchResult(
        key="validation",
        title="Dry-run validation (validate_plan, 10 operations)",
        how=(
            f"`validate_plan` through `ActivityEnvironment` on the same 10-operation plan as the database row, {runs} "
            "runs after 5 warm-up runs, SQLite file and PostgreSQL; it measures whatever `validate_plan` does "
            "(the static rules, and the plan's rows counted or dry-run in a transaction that is rolled back); "
            "statements counted on the target and app databases."
        ),
        result="; ".join(
            f"{name}: p50 {m.stats.p50:.1f} ms (p99 {m.stats.p99:.1f}), {m.statements_per_call:.0f} statements, "
            f"{m.cpu_ms_per_call:.1f} ms CPU"
            for name, m in measured.items()
        )
        or "not measured",
        target=f"p50 ≤ {VALIDATION_TARGET_P50_MS:.0f} ms on SQLite and on PostgreSQL",
        met=all(m.stats.p50 <= VALIDATION_TARGET_P50_MS for m in measured.values()) if complete else None,
        samples=f"{runs} plans per database",
        notes=f"Not measured: {VALIDATION_ERRORS}." if VALIDATION_ERRORS else "",
        figures={
            name: {
                "latency_ms": m.stats.figures(),
                "statements_per_call": m.statements_per_call,
                "cpu_ms_per_call": round(m.cpu_ms_per_call, 2),
            }
            for name, m in measured.items()
        },
    ).save()


if __name__ == "__main__":
    run_benchmark(main)
