"""The bot's `/metrics`: its prometheus-client registry, plus this process's SDK metrics when exported.

The Temporal SDK serves its meter on METRICS_PORT from its own exporter; the bot appends that
text so one scrape of the bot sees both (their metric names never overlap).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from core.observability.runtime import sdk_metrics_url
from core.settings import Settings

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _read(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


async def sdk_metrics_text(settings: Settings, wait_seconds: float = 2.0) -> str:
    """The SDK exporter's text, or "" when it is off or does not answer (the scrape still succeeds)."""
    url = sdk_metrics_url(settings)
    if url is None:
        return ""
    try:
        return await asyncio.to_thread(_read, url, wait_seconds)
    except OSError as error:
        logger.warning("SDK metrics at %s unavailable: %s", url, error)
        return ""


async def metrics_text(settings: Settings, registry: CollectorRegistry = REGISTRY) -> str:
    own = generate_latest(registry).decode()
    sdk = await sdk_metrics_text(settings)
    if sdk and not sdk.endswith("\n"):
        sdk += "\n"
    return own + sdk
