"""Fault injection at the activity boundary: the real activity, wrapped under its real name.

A wrapper runs a hook before (and a recorder after) the activity it wraps, so a test can make
a step fail, hold it at a gate, or note when (in the server's time) each attempt ran, without
changing the activity itself. The wrapped activity keeps its name and type hints, so the worker
decodes its input exactly as it would the real one's.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from worker.build import ActivitySet

Hook = Callable[[str, Any], Awaitable[None]]


def activity_name(fn: Callable[..., Any]) -> str:
    definition = activity._Definition.must_from_callable(fn)
    assert definition.name is not None
    return definition.name


@dataclass(frozen=True)
class Attempt:
    """One run of an activity: which, for which ticket, when on the server's clock, and how it ended."""

    name: str
    ticket_id: str
    at: datetime
    attempt: int
    ok: bool
    local: bool


@dataclass
class AttemptLog:
    attempts: list[Attempt] = field(default_factory=list)

    def of(self, name: str, ticket_id: str | None = None, ok: bool | None = None) -> list[Attempt]:
        return [
            a
            for a in self.attempts
            if a.name == name and (ticket_id is None or a.ticket_id == ticket_id) and (ok is None or a.ok == ok)
        ]


def ticket_of(argument: Any) -> str:
    """The ticket an activity's input belongs to (every input names it, the batch of events in its events)."""
    ticket = getattr(argument, "ticket_id", None)
    if ticket is None and getattr(argument, "events", None):
        ticket = argument.events[0].ticket_id
    return str(ticket or "")


def wrap(fn: Callable[..., Awaitable[Any]], hook: Hook, log: AttemptLog) -> Callable[..., Awaitable[Any]]:
    """`fn` under its own name, with `hook` run first and every attempt logged."""
    name = activity_name(fn)

    @functools.wraps(fn)
    async def run(argument: Any) -> Any:
        info = activity.info()
        at = info.current_attempt_scheduled_time
        ok = False
        try:
            await hook(name, argument)
            result = await fn(argument)
            ok = True
            return result
        finally:
            log.attempts.append(Attempt(name, ticket_of(argument), at, info.attempt, ok, info.is_local))

    run.__dict__.pop("__temporal_activity_definition", None)  # copied from `fn` by functools.wraps
    return activity.defn(name=name)(run)


def wrapped(activities: ActivitySet, hook: Hook, log: AttemptLog) -> ActivitySet:
    return ActivitySet(
        workflow_queue=[wrap(fn, hook, log) for fn in activities.workflow_queue],
        llm_queue=[wrap(fn, hook, log) for fn in activities.llm_queue],
        cleanups=activities.cleanups,
    )


@dataclass
class AlwaysFails:
    """Makes one activity fail on every attempt: for good at once, or retryably until its policy is spent."""

    target: str
    retryable: bool

    async def __call__(self, name: str, argument: Any) -> None:
        if name == self.target:
            raise ApplicationError(
                f"{name} is broken (injected)", type="InjectedFault", non_retryable=not self.retryable
            )
