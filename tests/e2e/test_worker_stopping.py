"""A worker asked to stop while a delivery asks the ticket for its status stops at once; another worker delivers.

A retried delivery reads the ticket's newest status with a query, which only a polling workflow
worker answers. A stopping worker no longer polls, so before this was handled its own query waited
about 30 s for an answer, and the worker's shutdown with it (seen as 30 s teardowns in tests).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.notify import LogNotifier, NotifyActivities, query_status
from core.bootstrap import Databases, init_databases
from core.models import NotifyEvent, NotifyPost, NotifyResult, OutcomeStatus, TicketRequest, TicketStatus
from service.tickets import TicketService
from tests.pipeline import REQUESTER, with_activities
from tests.support import build_settings
from worker.activities import build_activity_set
from worker.build import build_workers


class RecordingNotifier(LogNotifier):
    """Fails its first delivery, as a Slack blip would: the retry is the attempt that asks the ticket."""

    def __init__(self) -> None:
        self.published: list[tuple[TicketStatus, list[NotifyPost]]] = []
        self.blipped = False

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        if not self.blipped:
            self.blipped = True
            raise ConnectionError("Slack blipped (injected)")
        self.published.append((status, posts))
        return await super().publish(status, posts)


async def test_a_worker_stopping_mid_delivery_stops_at_once_and_the_next_worker_delivers(
    tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    settings = build_settings(tmp_path / "data", f"stop-{uuid.uuid4().hex[:8]}")
    notifier = RecordingNotifier()
    asking, stopping = asyncio.Event(), asyncio.Event()
    real_query = query_status()

    async def query_once_the_worker_stops(workflow_id: str) -> TicketStatus:
        if not stopping.is_set():
            asking.set()
            await stopping.wait()
        return await real_query(workflow_id)

    databases = Databases.open(settings)
    try:
        await init_databases(databases, settings)
        first = build_workers(
            local_env.client,
            with_activities(
                build_activity_set(settings, databases),
                NotifyActivities(notifier, query_once_the_worker_stops).notify_ticket,
            ),
            task_queue=settings.temporal_task_queue,
            graceful_shutdown=timedelta(seconds=60),  # the delivery, not the grace, decides how long stopping takes
        )
        runs = [asyncio.create_task(worker.run()) for worker in first]
        service = TicketService(
            local_env.client, databases.app_sessions, settings.temporal_task_queue, signing_key=settings.signing_key
        )
        request = TicketRequest(
            text="upgrade acme-corp to the pro plan", requester=REQUESTER, approval=settings.approval_settings()
        )
        started = await service.start(request)
        await asyncio.wait_for(asking.wait(), 30)

        began = time.monotonic()
        stopped = asyncio.gather(*(worker.shutdown() for worker in first))
        await asyncio.sleep(0.5)  # the workers have stopped polling: nobody answers the query now
        stopping.set()
        await asyncio.wait_for(stopped, 60)
        await asyncio.gather(*runs)
        stop_seconds = time.monotonic() - began

        async with AsyncExitStack() as stack:
            second = build_activity_set(settings, databases)
            stack.push_async_callback(second.close)
            swapped = with_activities(second, NotifyActivities(notifier).notify_ticket)
            for worker in build_workers(local_env.client, swapped, task_queue=settings.temporal_task_queue):
                await stack.enter_async_context(worker)
            outcome = await asyncio.wait_for(service.result(started.short_id), 60)
            final = await service.status(started.short_id)
    finally:
        await databases.close()

    assert stop_seconds < 10, f"the worker took {stop_seconds:.1f} s to stop"
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert final.message_owed is False
    told = [post for _, posts in notifier.published for post in posts if post.kind is NotifyEvent.OUTCOME]
    assert len(told) == 1  # the outcome is told once
