"""Issue 12, item 5: when nobody answers the `status` query, people are told which of the two it is.

Measured on the dev server from the task queue's pollers: a ticket whose queue has no worker
("no worker is polling"), and a ticket whose worker polls but does not answer ("busy or slow").
The CLI's `show`, the dashboard and Slack's `/agent-ticket status` all use `why_unanswered`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from core import names
from core.models import ApprovalSettings, Risk, Stage, TicketRequest
from service.silence import QueueWorkers, explain
from service.tickets import TicketService
from tests.chaos.waiting import eventually
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import build_workers

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def request() -> TicketRequest:
    return TicketRequest(
        text="upgrade acme-corp to the pro plan", requester="dave", approval=ApprovalSettings(approvers=["alice"])
    )


async def test_a_ticket_whose_queue_has_no_worker_says_so(local_env: WorkflowEnvironment) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    service = TicketService(local_env.client, None, queue)
    started = await service.start(request())
    said = await service.why_unanswered(started.short_id)
    assert said.startswith(f"No worker is polling task queue '{queue}'"), said
    assert "agent-ticket worker" in said


async def test_a_ticket_whose_worker_polls_is_said_to_wait_for_a_busy_or_slow_worker(
    local_env: WorkflowEnvironment,
) -> None:
    queue = f"busy-{uuid.uuid4().hex[:8]}"
    service = TicketService(local_env.client, None, queue)
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    workers = build_workers(local_env.client, fakes.activity_set(), task_queue=queue)
    async with workers[0], workers[1]:
        started = await service.start(request())
        await eventually(lambda: service.status(started.short_id), lambda s: s.stage is Stage.AWAITING_APPROVAL)
        said = await service.why_unanswered(started.short_id)
        await local_env.client.get_workflow_handle(names.workflow_id_for(started.short_id)).terminate("test over")
    assert said.startswith(f"A worker is polling task queue '{queue}'"), said
    assert "busy or slow" in said


def test_a_worker_that_stopped_polling_a_while_ago_counts_as_none() -> None:
    workers = QueueWorkers("agent-ticket", [NOW - timedelta(minutes=3)])
    said = explain(workers, "T-abc", NOW)
    assert said.startswith("No worker is polling task queue 'agent-ticket' since 11:57:00 UTC")
    lately = QueueWorkers("agent-ticket", [NOW - timedelta(seconds=20), NOW - timedelta(minutes=4)])
    assert "(1 poller(s), the latest 20 s ago)" in explain(lately, "T-abc", NOW)
