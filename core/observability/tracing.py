"""OpenTelemetry tracing across bot → workflow → activities, exported over OTLP/HTTP when configured.

Temporal's `TracingInterceptor` on the client puts the trace context in the workflow's
headers; the worker (which inherits the client's interceptors) continues it in
`RunWorkflow` and `RunActivity` spans, so one trace shows a ticket from the Slack command to
the last activity. Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the packages come with the
`otel` extra (`pip install 'agent-ticket[otel]'`) and are imported only then.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from temporalio.client import Interceptor

from core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
MISSING_PACKAGES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry packages are not installed "
    "(pip install 'agent-ticket[otel]'); tracing is off"
)


def tracing_available() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
        import temporalio.contrib.opentelemetry  # noqa: F401
    except ImportError:
        return False
    return True


def traces_endpoint(base: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL (as the OTel spec has it); traces go to /v1/traces."""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def tracing_interceptors(settings: Settings) -> list[Interceptor]:
    """The client interceptors that carry traces: `TracingInterceptor` when tracing is configured, else none.

    It uses the global tracer provider, set by `configure_tracing` at process start; workers
    built on the client get it too.
    """
    if not settings.tracing_enabled or not tracing_available():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Install the global tracer provider exporting to the configured collector; None when tracing is off.

    Standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
    ...) apply as usual.
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint is None:
        return None
    if not tracing_available():
        logger.error(MISSING_PACKAGES)
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, which win over our default name.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint(endpoint))))
    trace.set_tracer_provider(provider)
    logger.info("tracing: exporting spans of %s to %s", service_name, traces_endpoint(endpoint))
    return provider
