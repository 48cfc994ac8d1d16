"""A ticket pipeline on the shared dev server whose client can carry a runtime or interceptors of its own."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases, init_databases
from core.models import Decision, DecisionSource, Stage, TicketRequest, TicketStatus
from core.settings import Settings, load_settings
from core.temporal import data_converter
from core.tickets import TicketService
from worker.activities import build_activity_set
from worker.build import build_workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@dataclass
class Pipeline:
    settings: Settings
    databases: Databases
    client: Client
    service: TicketService

    def request(self, text: str, requester: str = "dave") -> TicketRequest:
        return TicketRequest(text=text, requester=requester, approval=self.settings.approval_settings())

    async def wait_for_stage(self, ticket: str, stage: Stage) -> TicketStatus:
        for _ in range(300):
            status = await self.service.status(ticket)
            if status.stage is stage:
                return status
            await asyncio.sleep(0.05)
        raise AssertionError(f"{ticket} never reached {stage}")

    async def approve(self, ticket: str, *deciders: str) -> None:
        status = await self.wait_for_stage(ticket, Stage.AWAITING_APPROVAL)
        assert status.approval is not None
        for decider in deciders:
            decision = Decision(
                approve=True,
                decider=decider,
                source=DecisionSource.DASHBOARD,
                request_id=status.approval.request_id,
                plan_hash=status.approval.plan_hash,
            )
            await self.service.decide(ticket, decision)


PipelineFactory = Callable[..., AbstractAsyncContextManager[Pipeline]]


def pipeline_factory(env: WorkflowEnvironment, tmp_path: Path) -> PipelineFactory:
    """Workers with the real activities on a queue of their own, on a client built as asked."""

    @asynccontextmanager
    async def open_pipeline(
        *, runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = (), **overrides: object
    ) -> AsyncIterator[Pipeline]:
        queue = f"obs-{uuid.uuid4().hex[:8]}"
        settings = load_settings(
            data_dir=tmp_path / f"data-{queue}",
            openai_api_key=None,
            slack_bot_token=None,
            slack_signing_secret=None,
            approvers=["alice", "bob", "carol"],
            temporal_task_queue=queue,
            _env_file=None,
            **overrides,
        )
        client = await Client.connect(
            env.client.service_client.config.target_host,
            namespace=env.client.namespace,
            data_converter=data_converter(settings),
            interceptors=interceptors,
            runtime=runtime,
        )
        async with AsyncExitStack() as stack:
            databases = Databases.open(settings)
            stack.push_async_callback(databases.close)
            await init_databases(databases, settings)
            for worker in build_workers(client, build_activity_set(settings, databases), task_queue=queue):
                await stack.enter_async_context(worker)
            yield Pipeline(settings, databases, client, TicketService(client, databases.app_sessions, queue))

    return open_pipeline
