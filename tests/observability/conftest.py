"""A ticket pipeline on the shared dev server whose client can carry a runtime or interceptors of its own."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from service.temporal import data_converter
from tests.pipeline import Pipeline, pipeline_settings, running_pipeline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


PipelineFactory = Callable[..., AbstractAsyncContextManager[Pipeline]]


def pipeline_factory(env: WorkflowEnvironment, tmp_path: Path) -> PipelineFactory:
    """Workers with the real activities on a queue of their own, on a client built as asked."""

    @asynccontextmanager
    async def open_pipeline(
        *, runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = (), **overrides: object
    ) -> AsyncIterator[Pipeline]:
        queue = f"obs-{uuid.uuid4().hex[:8]}"
        settings = pipeline_settings(tmp_path / f"data-{queue}", queue, **overrides)
        client = await Client.connect(
            env.client.service_client.config.target_host,
            namespace=env.client.namespace,
            data_converter=data_converter(settings),
            interceptors=interceptors,
            runtime=runtime,
        )
        async with running_pipeline(client, settings) as pipeline:
            yield pipeline

    return open_pipeline
