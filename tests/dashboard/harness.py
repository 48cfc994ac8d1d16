"""A dashboard on the real workflow: scripted plan and safety report, real audit log, gated execution.

The plan, findings and before → after preview are scripted so every test (and the screenshot)
sees the same realistic ticket; audit events go through the real `record_event` activity into
the app DB, so the list and the timeline read what production would write.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from starlette.applications import Starlette
from temporalio import activity
from temporalio.client import Client

from activities.audit import AuditActivities
from activities.decision_proof import DecisionProofActivities
from bot.app import create_app
from bot.context import BotContext
from core import names
from core.bootstrap import Databases, init_databases
from core.models import (
    ExecutePlanInput,
    ExecutionResult,
    Filter,
    Finding,
    GatherContextInput,
    NamedRows,
    OperationImpact,
    OperationResult,
    Plan,
    Risk,
    RowChange,
    SafetyReport,
    SelectOperation,
    Stage,
    TableInfo,
    TicketContext,
    TicketRequest,
    TicketStatus,
    UpdateOperation,
    ValidatePlanInput,
    plan_hash,
)
from core.settings import Settings
from service.tickets import TicketService
from tests.pipeline import pipeline_settings
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import ActivitySet, build_workers

PASSWORD = {"alice": "alice-pw-1", "bob": "bob-pw-2", "mallory": "mallory-pw-3", "dave": "dave-pw-4"}
SESSION_SECRET = "test-session-secret-" + "x" * 32
HOST = "dash.test"
ORIGIN = f"http://{HOST}"

_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)  # fast hashes for tests
_HASHES = {name: _HASHER.hash(password) for name, password in PASSWORD.items()}
# Each dashboard user decides as the approver identity of the same name; only alice and bob are approvers.
DASHBOARD_USERS = ",".join(f"{name}:{name}:{_HASHES[name]}" for name in PASSWORD)

TICKET_TEXT = "move acme-corp and globex to the pro plan"
PLAN = Plan(
    summary="Move acme-corp and globex to the pro plan",
    rationale="Both customers asked to upgrade; the pro plan has id 3. The plan list is read first to confirm it.",
    operations=[
        SelectOperation(
            table="plans",
            columns=["id", "name", "price_cents"],
            filters=[Filter(column="name", op="eq", value="pro")],
            limit=1,
        ),
        UpdateOperation(
            table="subscriptions",
            values=[{"column": "plan_id", "value": 3}, {"column": "seats", "value": 50}],
            filters=[Filter(column="customer_id", op="in", value=[1, 2])],
        ),
    ],
    planner="scripted (tests)",
)


CONTEXT = TicketContext(
    schema_tables=[TableInfo(name=name) for name in ("customers", "plans", "subscriptions")],
    named_rows=[
        NamedRows(table="customers", match="acme-corp", rows=[{"id": 1, "slug": "acme-corp", "name": "Acme Corp"}]),
        NamedRows(table="customers", match="globex", rows=[{"id": 2, "slug": "globex", "name": "Globex"}]),
    ],
)


def scripted_report(plan: Plan) -> SafetyReport:
    """Medium risk, one approval: two rows of subscriptions change, more than policy auto-approves."""
    return SafetyReport(
        risk=Risk.MEDIUM,
        required_approvals=1,
        plan_hash=plan_hash(plan),
        findings=[
            Finding(rule="read_only", risk=Risk.LOW, message="Reads plans; changes nothing.", operation_index=0),
            Finding(
                rule="row_count",
                risk=Risk.MEDIUM,
                message="Changes 2 rows of subscriptions; up to 1 row runs without approval.",
                operation_index=1,
            ),
        ],
        impacts=[
            OperationImpact(operation_index=0, kind="select", table="plans", rows_affected=1),
            OperationImpact(
                operation_index=1,
                kind="update",
                table="subscriptions",
                rows_affected=2,
                preview=[
                    RowChange(
                        before={"id": 1, "customer_id": 1, "plan_id": 2, "seats": 10, "status": "active"},
                        after={"id": 1, "customer_id": 1, "plan_id": 3, "seats": 50, "status": "active"},
                    ),
                    RowChange(
                        before={"id": 2, "customer_id": 2, "plan_id": 1, "seats": 3, "status": "trialing"},
                        after={"id": 2, "customer_id": 2, "plan_id": 3, "seats": 50, "status": "trialing"},
                    ),
                ],
            ),
        ],
    )


@dataclass
class DashboardScript:
    """The activities a dashboard test needs; `hold_execution` keeps a ticket in `executing`."""

    audit: AuditActivities
    base: ScriptedActivities = field(default_factory=lambda: ScriptedActivities(plan=PLAN.model_copy(deep=True)))
    hold_execution: asyncio.Event | None = None
    signing_keys: list[bytes] = field(default_factory=list)

    @activity.defn(name=names.ACTIVITY_GATHER_CONTEXT)
    async def gather_context(self, input: GatherContextInput) -> TicketContext:
        return CONTEXT

    @activity.defn(name=names.ACTIVITY_VALIDATE_PLAN)
    async def validate_plan(self, input: ValidatePlanInput) -> SafetyReport:
        return scripted_report(input.plan)

    @activity.defn(name=names.ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        if self.hold_execution is not None:
            await self.hold_execution.wait()
        self.base.executions.append(input)
        return ExecutionResult(
            plan_hash=input.plan_hash,
            results=[OperationResult(operation_index=1, kind="update", table="subscriptions", rows_affected=2)],
            executed_at=datetime.now(UTC),
        )

    def activity_set(self) -> ActivitySet:
        return ActivitySet(
            workflow_queue=[
                self.audit.record_events,
                self.gather_context,
                self.validate_plan,
                self.base.resolve_approvers,
                self.execute_plan,
                self.base.notify_activity(),
                DecisionProofActivities(self.signing_keys, allow_unsigned=False).verify_decision,
            ],
            llm_queue=[self.base.plan_ticket],
        )


def dashboard_settings(data_dir: Path, queue: str, **overrides: object) -> Settings:
    dashboard: dict[str, object] = {
        "dashboard_users": DASHBOARD_USERS,
        "dashboard_session_secret": SESSION_SECRET,
        "public_url": ORIGIN,
    }
    return pipeline_settings(data_dir, queue, **{**dashboard, **overrides})


@dataclass
class DashboardWorld:
    settings: Settings
    databases: Databases
    service: TicketService
    script: DashboardScript
    context: BotContext
    app: Starlette

    async def file_ticket(self, text: str = TICKET_TEXT, requester: str = "dave") -> str:
        """Start a ticket and return its short id once it waits for approval."""
        request = TicketRequest(text=text, requester=requester, approval=self.settings.approval_settings())
        started = await self.service.start(request, dedupe_key=uuid.uuid4().hex)
        await self.wait_for(started.short_id, lambda status: status.stage is Stage.AWAITING_APPROVAL)
        return started.short_id

    def executions_of(self, short_id: str) -> int:
        """How many times the plan of this ticket was executed."""
        return sum(1 for run in self.script.base.executions if run.workflow_id == f"ticket-{short_id}")

    async def wait_for(self, short_id: str, condition: Callable[[TicketStatus], bool]) -> TicketStatus:
        """Poll the workflow's status until `condition` holds (15 s at most)."""
        for _ in range(300):
            status = await self.service.status(short_id)
            if condition(status):
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"{short_id} never reached the expected state; it is {status.status_label}")


@asynccontextmanager
async def dashboard_world(client: Client, data_dir: Path, **overrides: object) -> AsyncIterator[DashboardWorld]:
    queue = f"dash-{uuid.uuid4().hex[:8]}"
    settings = dashboard_settings(data_dir, queue, **overrides)
    async with AsyncExitStack() as stack:
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)
        await init_databases(databases, settings)
        script = DashboardScript(audit=AuditActivities(databases.app_sessions), signing_keys=settings.decision_keys)
        for worker in build_workers(client, script.activity_set(), task_queue=queue):
            await stack.enter_async_context(worker)
        service = TicketService(client, databases.app_sessions, queue, signing_key=settings.signing_key)
        context = BotContext(settings, service, databases)
        yield DashboardWorld(settings, databases, service, script, context, create_app(context))


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
