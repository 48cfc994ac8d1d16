"""Prometheus metrics: the worker's endpoint (SDK + ticket + activity metrics) and the bot's `/metrics`."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from bot.app import create_metrics_app
from bot.context import BotContext
from core.models import OutcomeStatus, TicketSource
from core.observability.runtime import bind_address, install_metrics_runtime, metrics_runtime, sdk_metrics_url
from core.settings import load_settings
from tests.observability.conftest import pipeline_factory, scrape
from tests.support import free_port


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def runtime(metrics_port: int) -> Iterator[Runtime]:
    """One runtime exporting to a port of the module's own, as `agent-ticket worker` makes with METRICS_PORT."""
    yield metrics_runtime(f"127.0.0.1:{metrics_port}")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample `name{...}` whose labels include `labels`."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{key}="{value}"' in match[1] for key, value in labels.items()):
            return float(match[2])
    return None


async def scraped_until(url: str, name: str, **labels: str) -> str:
    """The exporter's text once `name` with `labels` is in it (the SDK exports asynchronously)."""
    text = ""
    for _ in range(100):
        text = await asyncio.to_thread(scrape, url)
        if sample(text, name, **labels) is not None:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} never appeared at {url}:\n{text[-3000:]}")


async def test_worker_endpoint_serves_sdk_ticket_and_activity_metrics(
    local_env: WorkflowEnvironment, tmp_path: Path, runtime: Runtime, metrics_port: int
) -> None:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with pipeline_factory(local_env, tmp_path)(runtime=runtime) as pipeline:
        low = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan"))
        risky = await pipeline.service.start(pipeline.request("make carol@acme-corp.example an admin"))
        await pipeline.approve(risky.short_id, "alice", "bob")
        for ticket in (low, risky):
            assert (await pipeline.service.result(ticket.short_id)).status is OutcomeStatus.DONE
        queue = pipeline.settings.temporal_task_queue

        text = await scraped_until(url, "agent_ticket_tickets_finished_total", task_queue=queue, outcome="done")

    assert sample(text, "agent_ticket_tickets_finished_total", task_queue=queue, outcome="done") == 2
    # The SDK's own metrics, on the same endpoint.
    assert sample(text, "temporal_workflow_completed_total", task_queue=queue) is not None
    assert sample(text, "temporal_activity_execution_latency_count", task_queue=queue) is not None
    # Every activity attempt timed by type and outcome, the local audit activity included.
    for activity_type in ("gather_context", "validate_plan", "execute_plan", "notify_ticket", "record_events"):
        count = sample(text, "agent_ticket_activity_seconds_count", activity_type=activity_type, outcome="ok")
        assert count is not None and count >= 2, activity_type
    llm_queue = f"{queue}-llm"
    assert sample(text, "agent_ticket_llm_calls_total", task_queue=llm_queue, outcome="ok") == 2
    # Stage latencies: both tickets planned, one waited for people, both finished.
    assert sample(text, "agent_ticket_time_to_plan_seconds_count", task_queue=queue) == 2
    assert sample(text, "agent_ticket_approval_wait_seconds_count", task_queue=queue, verdict="approved") == 1
    assert sample(text, "agent_ticket_ticket_duration_seconds_count", task_queue=queue, outcome="done") == 2
    assert sample(text, "agent_ticket_ticket_duration_seconds_bucket", task_queue=queue, le="86400") == 2
    assert sample(text, "agent_ticket_decisions_total", task_queue=queue, result="counted") == 2
    assert sample(text, "agent_ticket_notify_failures_total", task_queue=queue) is None


def registry_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_bot_metrics_count_starts_and_decisions_and_add_the_sdk_metrics(
    local_env: WorkflowEnvironment, tmp_path: Path, runtime: Runtime, metrics_port: int
) -> None:
    started_before = registry_value("agent_ticket_tickets_started_total", source="cli", result="started")
    duplicate_before = registry_value("agent_ticket_tickets_started_total", source="cli", result="duplicate")
    sent_before = registry_value(
        "agent_ticket_decisions_sent_total", source="dashboard", decision="approve", result="counted"
    )
    async with pipeline_factory(local_env, tmp_path)(runtime=runtime, metrics_port=metrics_port) as pipeline:
        request = pipeline.request("make carol@acme-corp.example an admin")
        assert request.source is TicketSource.CLI
        started = await pipeline.service.start(request, dedupe_key="metrics-dup")
        await pipeline.service.start(request, dedupe_key="metrics-dup")
        await pipeline.approve(started.short_id, "alice", "bob")
        await pipeline.service.result(started.short_id)

        app = create_metrics_app(BotContext(pipeline.settings, pipeline.service, pipeline.databases))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as http:
            response = await http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "agent_ticket_tickets_started_total", source="cli", result="started") == started_before + 1
    assert sample(text, "agent_ticket_tickets_started_total", source="cli", result="duplicate") == duplicate_before + 1
    assert (
        sample(text, "agent_ticket_decisions_sent_total", source="dashboard", decision="approve", result="counted")
        == sent_before + 2
    )
    assert sample(text, "agent_ticket_ticket_start_seconds_count", source="cli") is not None
    # METRICS_PORT is set: the bot appends the SDK exporter's text (here the same process's worker too).
    assert "\ntemporal_request_total{" in text or "\ntemporal_long_request_total{" in text
    assert "# TYPE agent_ticket_tickets_finished_total counter" in text


def test_a_taken_metrics_port_is_an_error_that_names_the_settings() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(_env_file=None, metrics_port=port)
        with pytest.raises(OSError, match="METRICS_HOST:METRICS_PORT"):
            install_metrics_runtime(settings)


def test_metrics_addresses() -> None:
    assert bind_address(load_settings(_env_file=None)) is None
    assert sdk_metrics_url(load_settings(_env_file=None)) is None
    exposed = load_settings(_env_file=None, metrics_host="0.0.0.0", metrics_port=9464)
    assert bind_address(exposed) == "0.0.0.0:9464"
    assert sdk_metrics_url(exposed) == "http://127.0.0.1:9464/metrics"
    assert bind_address(load_settings(_env_file=None, metrics_host="::", metrics_port=9464)) == "[::]:9464"
