"""A workflow that reads the wall clock, which the sandbox must refuse whatever runner wraps it.

In a module of its own with workflow-safe imports only: the sandbox re-imports the module a
workflow class lives in.
"""

from __future__ import annotations

import datetime

from temporalio import workflow


@workflow.defn
class ClockReadingWorkflow:
    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()  # non-deterministic: the sandbox stops it
