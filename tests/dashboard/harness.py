"""A dashboard on the real workflow and the real activities on SQLite; only the LLM is scripted.

The planner returns the same plan every time, so every test (and the screenshot) sees the same
realistic ticket: the real context, safety check (findings, before → after preview), audit log
and execution run on the seeded demo databases, as production would. Execution can be held at a
gate to keep a ticket in `executing`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from sqlalchemy import func, select
from starlette.applications import Starlette
from temporalio import activity
from temporalio.client import Client

from bot.app import create_app
from bot.context import BotContext
from core import names
from core.bootstrap import Databases
from core.ledger import executions
from core.models import (
    ExecutePlanInput,
    ExecutionResult,
    Stage,
    TicketRequest,
    TicketStatus,
)
from core.schema import TicketRow
from core.settings import Settings
from service.tickets import TicketService
from tests.pipeline import ONE_APPROVAL_PLAN, activity_named, running_pipeline, with_activities
from tests.support import build_settings, wait_for_status
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import ActivitySet

PASSWORD = {"alice": "alice-pw-1", "bob": "bob-pw-2", "mallory": "mallory-pw-3", "dave": "dave-pw-4"}
SESSION_SECRET = "test-session-secret-" + "x" * 32
HOST = "dash.test"
ORIGIN = f"http://{HOST}"

_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)  # fast hashes for tests
_HASHES = {name: _HASHER.hash(password) for name, password in PASSWORD.items()}
# Each dashboard user decides as the approver identity of the same name; only alice and bob are approvers.
DASHBOARD_USERS = ",".join(f"{name}:{name}:{_HASHES[name]}" for name in PASSWORD)

TICKET_TEXT = "turn on sso and audit export for acme-corp"
PLAN = ONE_APPROVAL_PLAN


@dataclass
class ExecutionGate:
    """The real execute activity behind a gate: while `hold` is set and not released, tickets stay in `executing`."""

    execute: Callable[[ExecutePlanInput], Awaitable[ExecutionResult]]
    hold: asyncio.Event | None = None

    @activity.defn(name=names.ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        if self.hold is not None:
            await self.hold.wait()
        return await self.execute(input)


def dashboard_settings(data_dir: Path, queue: str, **overrides: object) -> Settings:
    dashboard: dict[str, object] = {
        "dashboard_users": DASHBOARD_USERS,
        "dashboard_session_secret": SESSION_SECRET,
        "public_url": ORIGIN,
    }
    return build_settings(data_dir, queue, **{**dashboard, **overrides})


@dataclass
class DashboardWorld:
    settings: Settings
    databases: Databases
    service: TicketService
    gate: ExecutionGate
    context: BotContext
    app: Starlette

    async def file_ticket(self, text: str = TICKET_TEXT, requester: str = "dave") -> str:
        """Start a ticket and return its short id once it waits for approval."""
        request = TicketRequest(text=text, requester=requester, approval=self.settings.approval_settings())
        started = await self.service.start(request, dedupe_key=uuid.uuid4().hex)
        await self.wait_for(started.short_id, lambda status: status.stage is Stage.AWAITING_APPROVAL)
        await self.listed_as(started.short_id, Stage.AWAITING_APPROVAL.value)
        return started.short_id

    async def listed_as(self, short_id: str, status: str) -> None:
        """Until the app DB's ticket list says `status` (the audit activity writes it just after the workflow moves)."""
        for _ in range(300):
            async with self.databases.app_sessions() as session:
                row = await session.get(TicketRow, short_id)
            if row is not None and row.status == status:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"T-{short_id} is not listed as {status}")

    async def executions_of(self, short_id: str) -> int:
        """How many times the plan of this ticket ran: its rows in the target DB's execution ledger."""
        query = select(func.count()).select_from(executions).where(executions.c.workflow_id == f"ticket-{short_id}")
        async with self.databases.target_sessions() as session:
            return int(await session.scalar(query) or 0)

    async def wait_for(self, short_id: str, condition: Callable[[TicketStatus], bool]) -> TicketStatus:
        """The workflow's status once `condition` holds."""
        return await wait_for_status(self.service, short_id, condition)


@asynccontextmanager
async def dashboard_world(client: Client, data_dir: Path, **overrides: object) -> AsyncIterator[DashboardWorld]:
    settings = dashboard_settings(data_dir, f"dash-{uuid.uuid4().hex[:8]}", **overrides)
    planner = ScriptedActivities(plan=PLAN)
    gates: list[ExecutionGate] = []

    def scripted_llm_and_gate(real: ActivitySet) -> ActivitySet:
        gates.append(ExecutionGate(activity_named(real, names.ACTIVITY_EXECUTE_PLAN)))
        return with_activities(real, planner.plan_ticket, gates[0].execute_plan)

    async with running_pipeline(client, settings, adjust=scripted_llm_and_gate) as pipeline:
        context = BotContext(settings, pipeline.service, pipeline.databases)
        yield DashboardWorld(settings, pipeline.databases, pipeline.service, gates[0], context, create_app(context))


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def http_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, follow_redirects=False)


async def sign_in(client: httpx.AsyncClient, username: str, password: str | None = None) -> httpx.Response:
    page = await client.get("/login")
    token = csrf_from(page.text)
    return await client.post(
        "/login",
        data={"username": username, "password": password or PASSWORD[username], "csrf_token": token, "next": "/"},
        headers={"Origin": ORIGIN},
    )
