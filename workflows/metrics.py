"""Ticket metrics recorded by the workflow, where the stages' times are known exactly.

Through `workflow.metric_meter()`: it records nothing while a history is replayed, so a
worker that picks up a ticket after a restart counts nothing twice, and recording is not a
command, so it changes no history. The worker's runtime exports it with the SDK metrics
(core/observability/runtime.py); the names are in `core.observability.names`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.observability import names


def _seconds(since: datetime) -> timedelta:
    return max(workflow.now() - since, timedelta(0))


def ticket_finished(outcome: str, created_at: datetime) -> None:
    """One ticket reached its end state; how long it took from submission."""
    meter = workflow.metric_meter()
    attributes = {"outcome": outcome}
    meter.create_counter(names.TICKETS_FINISHED, "Tickets that reached an end state, by outcome.").add(1, attributes)
    meter.create_histogram_timedelta(
        names.TICKET_DURATION, "Submission to end state (includes waiting for people).", "s"
    ).record(_seconds(created_at), attributes)


def plan_ready(created_at: datetime) -> None:
    """The first plan is validated: the time from submission to something a person can decide on."""
    workflow.metric_meter().create_histogram_timedelta(
        names.TIME_TO_PLAN, "Submission to the first validated plan (context, LLM, safety check).", "s"
    ).record(_seconds(created_at))


def approval_wait_ended(requested_at: datetime, verdict: str) -> None:
    """An approval request was answered or ran out: how long people took, by verdict."""
    workflow.metric_meter().create_histogram_timedelta(
        names.APPROVAL_WAIT, "Approval requested to decided (approved, rejected, replan) or expired.", "s"
    ).record(_seconds(requested_at), {"verdict": verdict})


def decision_received(counted: bool) -> None:
    """A decision signal: counted, or ignored (not an approver, out of date, the requester, too late)."""
    workflow.metric_meter().create_counter(
        names.DECISIONS, "Approve/reject decisions the workflow received, counted or ignored."
    ).add(1, {"result": "counted" if counted else "ignored"})
