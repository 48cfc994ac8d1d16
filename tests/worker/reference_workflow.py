"""A workflow that takes a decision the way `TicketWorkflow` does: a loosely typed signal payload."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


@workflow.defn(name="reference-probe")
class DecisionWaiter:
    def __init__(self) -> None:
        self.received: list[str] = []

    @workflow.signal(name="decide")
    async def decide(self, payload: Any) -> None:
        self.received.append(type(payload).__name__)

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.received))
        return self.received
