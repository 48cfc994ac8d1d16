"""Running the workers until asked to stop: used by `agent-ticket worker` and `agent-ticket dev`."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.client import Client

from core.bootstrap import Databases
from core.search_attributes import ensure_registered
from core.settings import Settings
from service.temporal import connect
from worker.activities import build_activity_set
from worker.build import QueueRole, build_workers
from worker.stickiness import release_sticky_tickets_logged

logger = logging.getLogger(__name__)


async def run_workers(
    settings: Settings,
    *,
    role: QueueRole = QueueRole.ALL,
    stop: asyncio.Event,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Poll the ticket queues until `stop` is set, then finish in-flight tasks and return.

    `ready` is set once every worker is polling.
    """
    if role is not QueueRole.LLM and not settings.decision_keys and not settings.allow_unsigned_decisions:
        logger.warning(
            "DECISION_SIGNING_KEY is not set and ALLOW_UNSIGNED_DECISIONS is off: no decision can count, "
            "so tickets that need approval will expire (set the same key for the bot, workers and CLI)"
        )
    databases = Databases.open(settings)
    releasing: asyncio.Task[None] | None = None
    try:
        client = client or await connect(settings)
        if role in (QueueRole.WORKFLOWS, QueueRole.ALL):
            # Tickets a killed worker had cached go on without waiting for it (worker/stickiness.py).
            releasing = asyncio.create_task(release_sticky_tickets_logged(client, settings.temporal_task_queue))
            # Once per namespace; from then on new tickets carry TicketStatus/TicketRisk/TicketRequester.
            await ensure_registered(client, settings.temporal_namespace)
        activities = build_activity_set(settings, databases)
        workers = build_workers(
            client,
            activities,
            task_queue=settings.temporal_task_queue,
            role=role,
            graceful_shutdown=timedelta(seconds=settings.worker_shutdown_grace_seconds),
            llm_activities_per_second=settings.llm_activities_per_second,
        )
        async with AsyncExitStack() as stack:
            stack.push_async_callback(activities.close)
            for worker in workers:
                await stack.enter_async_context(worker)
            logger.info("worker polling %s", ", ".join(worker.task_queue for worker in workers))
            if ready is not None:
                ready.set()
            await stop.wait()
            logger.info("worker stopping")
    finally:
        if releasing is not None:
            releasing.cancel()
        await databases.close()
