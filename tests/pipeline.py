"""A ticket pipeline for tests: the real activities and workers on a task queue of their own.

The e2e, observability and durability tests each run tickets through it on the shared dev
server, with their own client (a runtime, interceptors) or databases (PostgreSQL) where they
need them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from core.bootstrap import Databases, init_databases
from core.models import DecisionSource, Stage, TicketRequest, TicketStatus
from core.settings import Settings, load_settings
from service.tickets import StartedTicket, TicketService
from worker.activities import build_activity_set
from worker.build import build_workers

APPROVERS = ["alice", "bob", "carol"]
# Front doors and workers of the tests share it, as production's do; decisions are signed and checked.
TEST_SIGNING_KEY = "test-decision-signing-key-0123456789abcdef"
REQUESTER = "dave"


def pipeline_settings(data_dir: Path, task_queue: str, **overrides: object) -> Settings:
    """Embedded SQLite databases in `data_dir`, the offline planner, no Slack, three approvers."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "openai_api_key": None,
        "slack_bot_token": None,
        "slack_signing_secret": None,
        "slack_app_token": None,
        "approvers": APPROVERS,
        "temporal_task_queue": task_queue,
        "decision_signing_key": TEST_SIGNING_KEY,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


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
        for _ in range(300):
            status = await self.service.status(ticket)
            if status.stage is stage:
                return status
            assert status.outcome is None, status.outcome
            await asyncio.sleep(0.05)
        raise AssertionError(f"{ticket} never reached {stage}")

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


@asynccontextmanager
async def running_pipeline(
    client: Client, settings: Settings, databases: Databases | None = None
) -> AsyncIterator[Pipeline]:
    """Real workers for `settings` on `client`; the databases are opened and migrated unless given."""
    queue = settings.temporal_task_queue
    async with AsyncExitStack() as stack:
        if databases is None:
            databases = Databases.open(settings)
            stack.push_async_callback(databases.close)
            await init_databases(databases, settings)
        activities = build_activity_set(settings, databases)
        stack.push_async_callback(activities.close)
        for worker in build_workers(client, activities, task_queue=queue):
            await stack.enter_async_context(worker)
        service = TicketService(client, databases.app_sessions, queue, signing_key=settings.signing_key)
        yield Pipeline(settings, databases, client, service)
