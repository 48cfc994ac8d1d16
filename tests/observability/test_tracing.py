"""Tracing: one trace from the client's start through the workflow run to each activity."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from core.models import OutcomeStatus
from core.observability.tracing import configure_tracing, traces_endpoint, tracing_interceptors
from core.settings import load_settings
from tests.observability.conftest import pipeline_factory


def _parent_chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_a_ticket_is_one_trace_from_start_to_activities(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interceptor = TracingInterceptor(provider.get_tracer("agent-ticket-test"))

    async with pipeline_factory(local_env, tmp_path)(interceptors=[interceptor]) as pipeline:
        started = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan"))
        assert (await pipeline.service.result(started.short_id)).status is OutcomeStatus.DONE

    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert {
        "StartWorkflow:TicketWorkflow",
        "RunWorkflow:TicketWorkflow",
        "StartActivity:gather_context",
        "RunActivity:gather_context",
        "RunActivity:plan_ticket",
        "RunActivity:execute_plan",
    } <= names, names
    ticket_spans = [span for span in spans if span.context is not None]
    (start,) = [span for span in ticket_spans if span.name == "StartWorkflow:TicketWorkflow"]
    assert start.context is not None
    trace_id = start.context.trace_id
    assert {span.context.trace_id for span in ticket_spans if span.context is not None} == {trace_id}
    by_id = {span.context.span_id: span for span in ticket_spans if span.context is not None}
    # Temporal's interceptor hangs the workflow's spans off the start: the run, and each activity's
    # scheduling, whose run (on the LLM worker too) is its child.
    (run_workflow,) = [span for span in ticket_spans if span.name == "RunWorkflow:TicketWorkflow"]
    assert _parent_chain(run_workflow, by_id) == ["StartWorkflow:TicketWorkflow"]
    (run_plan,) = [span for span in ticket_spans if span.name == "RunActivity:plan_ticket"]
    assert _parent_chain(run_plan, by_id) == ["StartActivity:plan_ticket", "StartWorkflow:TicketWorkflow"]


def test_tracing_is_off_unless_an_endpoint_is_set() -> None:
    settings = load_settings(_env_file=None)
    assert not settings.tracing_enabled
    assert tracing_interceptors(settings) == []
    assert configure_tracing(settings, "agent-ticket-test") is None


def test_an_endpoint_turns_the_interceptor_on() -> None:
    settings = load_settings(_env_file=None, otel_exporter_otlp_endpoint="http://collector:4318")
    (interceptor,) = tracing_interceptors(settings)
    assert isinstance(interceptor, TracingInterceptor)


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otlp.example.com/v1/traces", "https://otlp.example.com/v1/traces"),
    ],
)
def test_traces_go_to_the_collectors_traces_path(base: str, expected: str) -> None:
    assert traces_endpoint(base) == expected
