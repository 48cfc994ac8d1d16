"""Shared pieces of the durability tests: settings for real workers, the target DB's write counter, history timing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from core.bootstrap import Databases
from core.ledger import executions
from core.models import TicketRequest
from core.settings import Settings
from tests.fakes.openai_server import FAKE_API_KEY, FakeOpenAIServer
from tests.pipeline import REQUESTER, Pipeline, running_pipeline
from tests.support import build_settings

WRITE_LOG = "durability_write_log"


@asynccontextmanager
async def openai_pipeline(
    fake: FakeOpenAIServer, data_dir: Path, databases: Databases, client: Client, **overrides: object
) -> AsyncIterator[Pipeline]:
    """The real workers with the real `OpenAIPlanner` pointed at `fake`, on a fresh task queue."""
    queue = f"llm-{uuid.uuid4().hex[:8]}"
    settings = build_settings(data_dir, queue, openai_api_key=FAKE_API_KEY, openai_base_url=fake.base_url, **overrides)
    async with running_pipeline(client, settings, databases) as pipeline:
        yield pipeline


def worker_env(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The environment variables that make a worker process read the same settings."""
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "AGENT_TICKET_DATA_DIR": str(settings.data_dir),
        "APPROVERS": ",".join(settings.approvers),
        "PYTHONUNBUFFERED": "1",
    }
    if settings.decision_signing_key is not None:  # the worker checks what the test's front door signs
        env["DECISION_SIGNING_KEY"] = settings.decision_signing_key.get_secret_value()
    if settings.openai_api_key is not None:
        env["OPENAI_API_KEY"] = settings.openai_api_key.get_secret_value()
    if settings.openai_base_url is not None:
        env["OPENAI_BASE_URL"] = settings.openai_base_url
    return env


def ticket_request(settings: Settings, text: str, requester: str = REQUESTER) -> TicketRequest:
    return TicketRequest(text=text, requester=requester, approval=settings.approval_settings())


async def install_write_log(engine: AsyncEngine, table: str) -> None:
    """A trigger that logs every UPDATE applied to `table`: the target DB's own count of writes.

    A plan's update sets the same value when repeated, so the row alone cannot show a double
    write; the trigger's row commits (or rolls back) in the same transaction as the update.
    """
    async with engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE IF NOT EXISTS {WRITE_LOG} (tbl TEXT NOT NULL, row_id INTEGER NOT NULL)")
        )
        await connection.execute(
            text(
                f"CREATE TRIGGER IF NOT EXISTS {table}_write_log AFTER UPDATE ON {table} "
                f"BEGIN INSERT INTO {WRITE_LOG} (tbl, row_id) VALUES ('{table}', NEW.id); END"
            )
        )


async def writes_logged(engine: AsyncEngine, table: str, row_id: int) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(f"SELECT count(*) FROM {WRITE_LOG} WHERE tbl = :tbl AND row_id = :row_id"),
            {"tbl": table, "row_id": row_id},
        )
    return int(count or 0)


async def ledger_rows(databases: Databases, workflow_id: str) -> int:
    async with databases.target_engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).select_from(executions).where(executions.c.workflow_id == workflow_id)
        )
    return int(count or 0)


async def table_snapshot(engine: AsyncEngine, tables: Iterable[str]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of `tables`, ordered: compare two snapshots to prove nothing changed."""
    snapshot: dict[str, list[tuple[object, ...]]] = {}
    async with engine.connect() as connection:
        for table in tables:
            rows = (await connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))).all()
            snapshot[table] = [tuple(row) for row in rows]
    return snapshot


@dataclass(frozen=True)
class ActivityRun:
    """One activity of a workflow as its history records it (the last attempt only)."""

    name: str
    attempt: int
    scheduled: float  # epoch seconds, from the server's event times
    started: float | None
    closed: float
    completed: bool


async def activity_runs(client: Client, workflow_id: str) -> list[ActivityRun]:
    history: WorkflowHistory = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, tuple[int, float]] = {}
    runs: list[ActivityRun] = []
    for event in history.events:
        when = event.event_time.ToMicroseconds() / 1e6
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, when)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started[attributes.scheduled_event_id] = (attributes.attempt, when)
        elif event.event_type in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                scheduled_id = event.activity_task_failed_event_attributes.scheduled_event_id
            else:
                scheduled_id = event.activity_task_timed_out_event_attributes.scheduled_event_id
            name, scheduled_at = scheduled[scheduled_id]
            attempt, started_at = started.get(scheduled_id, (0, 0.0))
            runs.append(
                ActivityRun(
                    name=name,
                    attempt=attempt,
                    scheduled=scheduled_at,
                    started=started_at or None,
                    closed=when,
                    completed=event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                )
            )
    return runs
