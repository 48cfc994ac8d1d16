"""A ticket pipeline for tests: the real activities and workers on a task queue of their own.

The e2e, observability and durability tests each run tickets through it on the shared dev
server, with their own client (a runtime, interceptors) or databases (PostgreSQL) where they
need them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.client import Client

from core.bootstrap import Databases, init_databases
from core.models import (
    DecisionSource,
    Filter,
    Plan,
    SelectOperation,
    Stage,
    TicketRequest,
    TicketStatus,
    UpdateOperation,
)
from core.settings import Settings
from service.tickets import StartedTicket, TicketService
from tests.support import recorded_at_stage, wait_for_stage
from worker.activities import build_activity_set
from worker.build import ActivitySet, build_workers

REQUESTER = "dave"

# Plans a scripted LLM proposes, judged by the real safety check on the seeded demo data; each keeps
# its risk after it ran (the same rows match), so a module's tickets can share one database.
# Medium risk, one approval: two of one customer's flags.
ONE_APPROVAL_PLAN = Plan(
    summary="Turn on SSO and audit export for acme-corp",
    rationale="Acme Corp bought the security add-on; its flags are read first to confirm which are off.",
    operations=[
        SelectOperation(
            table="feature_flags",
            columns=["id", "name", "enabled"],
            filters=[Filter(column="customer_id", op="eq", value=1)],
            limit=10,
        ),
        UpdateOperation(
            table="feature_flags",
            values=[{"column": "enabled", "value": True}],
            filters=[
                Filter(column="customer_id", op="eq", value=1),
                Filter(column="name", op="in", value=["sso", "audit_export"]),
            ],
        ),
    ],
    planner="scripted (tests)",
)

# High risk, two approvals: a role is a sensitive column.
TWO_APPROVALS_PLAN = Plan(
    summary="Make user 2 of acme-corp an admin",
    operations=[
        UpdateOperation(
            table="users",
            values=[{"column": "role", "value": "admin"}],
            filters=[Filter(column="id", op="eq", value=2)],
        )
    ],
    planner="scripted (tests)",
)


@dataclass
class Pipeline:
    """Workers running on `settings.temporal_task_queue`, and the service that starts and decides tickets there."""

    settings: Settings
    databases: Databases
    client: Client
    service: TicketService

    def request(self, text: str, requester: str = REQUESTER) -> TicketRequest:
        return TicketRequest(text=text, requester=requester, approval=self.settings.approval_settings())

    async def wait_for_stage(self, ticket: str, stage: Stage) -> TicketStatus:
        """The status once the ticket reaches `stage`, and its record has caught up."""
        status = await wait_for_stage(self.service, ticket, stage)
        await recorded_at_stage(self.databases, status.ticket_id, stage)
        return status

    async def revert(self, ticket: str, requester: str, *, include_conflicts: bool = False) -> StartedTicket:
        """Ask to revert `ticket`, as a front door does: with today's approvers."""
        return await self.service.revert(
            ticket, requester, approval=self.settings.approval_settings(), include_conflicts=include_conflicts
        )

    async def approve(self, ticket: str, *deciders: str) -> None:
        status = await self.wait_for_stage(ticket, Stage.AWAITING_APPROVAL)
        assert status.approval is not None
        for decider in deciders:
            await self.service.decide(ticket, status.approval.decision(decider, DecisionSource.DASHBOARD))


def activity_named(activities: ActivitySet, name: str) -> Callable[..., Any]:
    """The activity of `activities` registered under `name`."""
    for function in [*activities.workflow_queue, *activities.llm_queue]:
        if activity._Definition.must_from_callable(function).name == name:
            return function
    raise LookupError(f"no activity {name!r}")


def with_activities(activities: ActivitySet, *replacements: Callable[..., Any]) -> ActivitySet:
    """`activities` with each replacement in place of the activity registered under the same name."""
    by_name = {activity._Definition.must_from_callable(function).name: function for function in replacements}

    def swapped(queue: Sequence[Callable[..., Any]]) -> list[Callable[..., Any]]:
        return [by_name.get(activity._Definition.must_from_callable(function).name, function) for function in queue]

    return ActivitySet(swapped(activities.workflow_queue), swapped(activities.llm_queue), activities.cleanups)


@asynccontextmanager
async def running_pipeline(
    client: Client,
    settings: Settings,
    databases: Databases | None = None,
    *,
    adjust: Callable[[ActivitySet], ActivitySet] | None = None,
) -> AsyncIterator[Pipeline]:
    """Real workers for `settings` on `client`; the databases are opened and migrated unless given.

    `adjust` may put stand-ins in place of real activities (`with_activities`): a scripted LLM, a gate.
    """
    queue = settings.temporal_task_queue
    async with AsyncExitStack() as stack:
        if databases is None:
            databases = Databases.open(settings)
            stack.push_async_callback(databases.close)
            await init_databases(databases, settings)
        activities = build_activity_set(settings, databases)
        if adjust is not None:
            activities = adjust(activities)
        stack.push_async_callback(activities.close)
        workers = build_workers(
            client, activities, task_queue=queue, llm_activities_per_second=settings.llm_activities_per_second
        )
        for worker in workers:
            await stack.enter_async_context(worker)
        service = TicketService(client, databases.app_sessions, queue, signing_key=settings.signing_key)
        yield Pipeline(settings, databases, client, service)
