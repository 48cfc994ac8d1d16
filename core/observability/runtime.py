"""The Temporal SDK runtime of a process, exporting its metrics to Prometheus on METRICS_PORT.

The SDK counts what it does (workflow and activity task latencies, polls, failures, sticky
cache, requests to the server); the workflow and the worker interceptor add the ticket
metrics to the same meter (`core.observability.names`). One runtime per process, made before
any client: clients and workers take the default runtime when they are created.
"""

from __future__ import annotations

import logging

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.observability.names import HISTOGRAM_BUCKETS
from core.settings import Settings

logger = logging.getLogger(__name__)


def prometheus_config(bind_address: str) -> PrometheusConfig:
    """Prometheus conventions: counters end in `_total`, durations in seconds, buckets fit each wait."""
    return PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={name: list(buckets) for name, buckets in HISTOGRAM_BUCKETS.items()},
    )


def metrics_runtime(bind_address: str) -> Runtime:
    """A runtime whose meter is served as Prometheus text at `http://<bind_address>/metrics`."""
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus_config(bind_address)))


def bind_address(settings: Settings) -> str | None:
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host
    return f"[{host}]:{settings.metrics_port}" if ":" in host else f"{host}:{settings.metrics_port}"


def sdk_metrics_url(settings: Settings) -> str | None:
    """Where this process's SDK metrics can be read from inside it (the bot's `/metrics` adds them)."""
    if settings.metrics_port is None:
        return None
    host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "", "localhost") else settings.metrics_host
    if host == "::":
        host = "::1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.metrics_port}/metrics"


def install_metrics_runtime(settings: Settings) -> Runtime | None:
    """Make the process's default runtime export to METRICS_PORT; None (SDK default) when it is unset."""
    address = bind_address(settings)
    if address is None:
        return None
    try:
        runtime = metrics_runtime(address)
    except Exception as error:  # the bridge reports a taken port as a plain exception
        raise OSError(f"cannot serve metrics on METRICS_HOST:METRICS_PORT={address}: {error}") from error
    Runtime.set_default(runtime, error_if_already_set=False)
    logger.info("Temporal SDK and ticket metrics on http://%s/metrics", address)
    return runtime
