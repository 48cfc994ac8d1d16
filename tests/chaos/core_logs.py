"""The Temporal Core's own log lines (the Rust side of the SDK), captured for assertions.

Core writes "[TMPRL1104] … Workflow task duration exceeded" when a workflow task holds a
worker too long (long local-activity retries, blocking code). Workers built on a client with
`CoreLogs.runtime` forward those lines to Python, where a test can assert there were none.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

TASK_DURATION_EXCEEDED = "TMPRL1104"
# Other lines of Core that mean a workflow task misbehaved.
CORE_TROUBLE = ("TMPRL1101", "eadlock", "ondeterminism")


class CoreLogs(logging.Handler):
    """Collects the lines Core forwards from the workers on `runtime` (and only those)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        self._core = logging.getLogger(f"chaos.temporal_core.{uuid.uuid4().hex[:6]}")
        self._core.propagate = False
        self._core.setLevel(logging.INFO)
        self._core.addHandler(self)
        self.runtime = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="INFO", other_level="WARN"),
                    forwarding=LogForwardingConfig(logger=self._core),
                )
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def mark(self) -> int:
        """Where the lines of what follows begin."""
        return len(self.lines)

    async def caught_up(self, within: float = 5.0) -> None:
        """Wait until every line Core wrote so far has reached Python (they are forwarded in batches)."""
        marker = f"chaos-flush-{uuid.uuid4().hex}"
        self.runtime._core_runtime.write_test_info_log(marker, "")
        deadline = time.monotonic() + within
        while not any(marker in line for line in self.lines[-50:]):
            assert time.monotonic() < deadline, "Core's log forwarding did not deliver a marker line"
            await asyncio.sleep(0.01)

    async def trouble_since(self, mark: int) -> list[str]:
        """Lines since `mark` that say a workflow task ran too long or went wrong."""
        await self.caught_up()
        return [
            line
            for line in self.lines[mark:]
            if TASK_DURATION_EXCEEDED in line or any(sign in line for sign in CORE_TROUBLE)
        ]
