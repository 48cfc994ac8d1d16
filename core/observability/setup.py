"""Telemetry of one process, set up before its first Temporal client and flushed when it ends."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from temporalio.runtime import Runtime

from core.observability.runtime import install_metrics_runtime
from core.observability.tracing import configure_tracing
from core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger(__name__)


@dataclass
class Telemetry:
    runtime: Runtime | None = None
    tracer_provider: TracerProvider | None = None

    def shutdown(self) -> None:
        """Send the spans still buffered: a process that exits right after its work would drop them."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()


def start_telemetry(settings: Settings, service_name: str, *, serve_metrics: bool) -> Telemetry:
    """Tracing when configured; the SDK metrics exporter on METRICS_PORT for long-running processes.

    One-shot CLI commands pass `serve_metrics=False`: they would only fight the worker for the port.
    """
    runtime = install_metrics_runtime(settings) if serve_metrics else None
    return Telemetry(runtime=runtime, tracer_provider=configure_tracing(settings, service_name))
