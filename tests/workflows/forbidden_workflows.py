"""Workflows that try what the sandbox must refuse, whatever runner wraps it.

In a module of its own with workflow-safe imports only: the sandbox re-imports the module a
workflow class lives in, so each run has its own `ATTEMPTS` (returned as the workflow's result).
"""

from __future__ import annotations

import datetime
import os
import random
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

ATTEMPTS: list[str] = []
WRITE_TO: list[str] = []


@workflow.defn
class ClockReadingWorkflow:
    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()  # non-deterministic: the sandbox stops it


def _append_to_file() -> object:
    with open(WRITE_TO[0], "a") as file:
        return file.write("written by workflow code\n")


FORBIDDEN: list[tuple[str, Callable[[], object]]] = [
    ("open", _append_to_file),
    ("os.getpid", os.getpid),
    ("time.time", time.time),
    ("random.random", random.random),
    ("datetime.now", datetime.datetime.now),
]


def _try(attempt: Callable[[], object]) -> str:
    try:
        attempt()
    except Exception:  # the sandbox's RestrictedWorkflowAccessError, among others
        return "refused"
    return "ALLOWED"


class QueueNameThatActs(str):
    """A task queue name whose length is workflow code trying what workflow code may not.

    The SDK reads an activity's task queue when it works out a payload's serialization context,
    outside any activation: this is workflow code running there.
    """

    def __len__(self) -> int:
        ATTEMPTS.append(", ".join(f"{name} {_try(attempt)}" for name, attempt in FORBIDDEN))
        return str.__len__(self)


@workflow.defn
class ActingQueueWorkflow:
    @workflow.run
    async def run(self, write_to: str) -> list[str]:
        WRITE_TO.append(write_to)
        activity = workflow.start_activity(
            "nobody_runs_this",
            "an argument: the lookup is made for each payload the command carries",
            task_queue=QueueNameThatActs("nobody-polls-this"),
            start_to_close_timeout=timedelta(minutes=1),
        )
        await workflow.sleep(timedelta(seconds=1))
        activity.cancel()
        return sorted(set(ATTEMPTS))
