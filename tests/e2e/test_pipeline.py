"""The whole path on a real Temporal dev server with the real activities, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from core.approval import NO_LONGER_AN_APPROVER
from core.bootstrap import Databases
from core.demo import subscriptions, users
from core.ledger import executions
from core.models import (
    ContinuedTicket,
    Decision,
    DecisionSource,
    OutcomeStatus,
    Stage,
    TicketOutcome,
    TicketRequest,
)
from core.names import ERROR_NOT_A_TICKET, ERROR_UNPROVEN_REQUEST, WORKFLOW_NAME, short_id_from
from core.request_proof import sign_request
from core.schema import AuditEventRow, TicketRow
from mcp_door.identity import new_token
from service.tickets import StartedTicket
from tests.pipeline import Pipeline, running_pipeline
from tests.postgres import fresh_postgres_database
from tests.seeded import SeededSqlite
from tests.support import TEST_SIGNING_KEY, build_settings, wait_for_status


@pytest.fixture(params=["sqlite", "postgresql"])
async def pipeline(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    local_env: WorkflowEnvironment,
    seeded_sqlite: SeededSqlite,
    postgres_template_name: str,
) -> AsyncIterator[Pipeline]:
    """Fresh databases as `init_databases` makes them (copies of the session's), real workers on a queue of its own."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        if request.param == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database(template=postgres_template_name))
            urls = {"app_database_url": url, "target_database_url": url}
        settings = build_settings(tmp_path / "data", queue, **urls)
        if request.param == "sqlite":
            await seeded_sqlite.copy_into(settings)
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)
        yield await stack.enter_async_context(running_pipeline(local_env.client, settings, databases))


async def test_low_risk_ticket_runs_to_done(pipeline: Pipeline) -> None:
    started = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan"))
    outcome = await pipeline.service.result(started.short_id)

    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    async with pipeline.databases.target_sessions() as session:
        plan_id = await session.scalar(select(subscriptions.c.plan_id).where(subscriptions.c.customer_id == 1))
        ledger_rows = await session.scalar(
            select(func.count()).select_from(executions).where(executions.c.workflow_id == started.workflow_id)
        )
    assert plan_id == 3  # pro
    assert ledger_rows == 1
    async with pipeline.databases.app_sessions() as session:
        ticket = await session.get(TicketRow, started.short_id)
        kinds = (
            await session.scalars(
                select(AuditEventRow.kind).where(AuditEventRow.ticket_id == started.short_id).order_by(AuditEventRow.id)
            )
        ).all()
    assert ticket is not None and ticket.status == "done"
    assert kinds[0] == "submitted" and "executed" in kinds and kinds[-1] in ("finished", "notified")


async def test_duplicate_start_is_a_no_op(pipeline: Pipeline) -> None:
    first = await pipeline.service.start(pipeline.request("show invoices for acme-corp"), dedupe_key="dup-1")
    second = await pipeline.service.start(pipeline.request("show invoices for acme-corp"), dedupe_key="dup-1")
    assert second.already_existed and second.workflow_id == first.workflow_id
    assert (await pipeline.service.result(first.short_id)).status is OutcomeStatus.DONE


async def test_risky_ticket_waits_for_two_approvers_then_runs(pipeline: Pipeline) -> None:
    started = await pipeline.service.start(pipeline.request("make carol@acme-corp.example an admin"))
    status = await pipeline.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
    assert status.approval is not None and status.approval.required_approvals == 2

    def decision(decider: str) -> Decision:
        assert status.approval is not None
        return status.approval.decision(decider, DecisionSource.CLI)

    # The workflow judges every decision and answers with its verdict; refusals are recorded too.
    requester = await pipeline.service.decide(started.short_id, decision("dave"))
    stranger = await pipeline.service.decide(started.short_id, decision("mallory"))
    assert requester is not None and not requester.accepted
    assert requester.reason == "the requester cannot decide on their own ticket"
    assert stranger is not None and (stranger.accepted, stranger.reason) == (False, "not an approver")
    counted = await pipeline.service.decide(started.short_id, decision("alice"))
    assert counted is not None and counted.accepted
    assert (await pipeline.service.status(started.short_id)).approved_by == ["alice"]
    async with pipeline.databases.target_sessions() as session:
        role = await session.scalar(select(users.c.role).where(users.c.email == "carol@acme-corp.example"))
    assert role != "admin"  # one approval of two does not run it
    await pipeline.service.decide(started.short_id, decision("bob"))

    outcome = await pipeline.service.result(started.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert sorted(outcome.decided_by) == ["alice", "bob"]
    async with pipeline.databases.target_sessions() as session:
        role = await session.scalar(select(users.c.role).where(users.c.email == "carol@acme-corp.example"))
    assert role == "admin"


@pytest.mark.parametrize("forgery", ["unsigned", "requester changed", "copied to another id"])
async def test_a_request_no_front_door_signed_for_the_ticket_is_refused_before_anything_is_written(
    pipeline: Pipeline, forgery: str
) -> None:
    """Whoever starts a workflow writes its requester: a raw start naming bob let bob's fellow approver approve
    their own change (the requester rule read the payload) and spend bob's budget. Only a front door's
    signature for this ticket's id lets a ticket naming a person go on."""
    workflow_id = f"ticket-{uuid.uuid4().hex[:10]}"
    request = pipeline.request("make carol@acme-corp.example an admin", requester="bob")
    if forgery != "unsigned":
        signed_for = workflow_id if forgery == "requester changed" else f"ticket-{uuid.uuid4().hex[:10]}"
        request = sign_request(request, signed_for, TEST_SIGNING_KEY.encode(), datetime.now(UTC))
    if forgery == "requester changed":
        request = request.model_copy(update={"requester": "dave"})
    rogue = await pipeline.client.start_workflow(
        WORKFLOW_NAME, request, id=workflow_id, task_queue=pipeline.settings.temporal_task_queue
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await rogue.result()

    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == ERROR_UNPROVEN_REQUEST
    assert ("unsigned" if forgery == "unsigned" else "bad signature") in failed.value.cause.message
    async with pipeline.databases.app_sessions() as session:
        assert await session.get(TicketRow, short_id_from(workflow_id)) is None


@pytest.mark.parametrize(("agent", "runs"), [("reporter", True), ("someone-unknown", False)])
async def test_only_a_configured_agents_request_goes_unsigned(
    tmp_path: Path, local_env: WorkflowEnvironment, agent: str, runs: bool
) -> None:
    """The MCP door an agent starts holds no key; agents never approve, so naming one of MCP_AGENTS needs no
    proof. Any other name would let a namespace client spread changes over budgets of its own making."""
    settings = build_settings(tmp_path / "data", f"e2e-{uuid.uuid4().hex[:8]}", mcp_agents=new_token("reporter").entry)
    async with running_pipeline(local_env.client, settings) as pipeline:
        handle = await pipeline.client.start_workflow(
            WORKFLOW_NAME,
            pipeline.request("show invoices for acme-corp", requester=f"agent:{agent}"),
            id=f"ticket-{uuid.uuid4().hex[:10]}",
            task_queue=settings.temporal_task_queue,
            result_type=TicketOutcome,
        )
        if runs:
            assert (await handle.result()).status is OutcomeStatus.DONE
            return
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == ERROR_UNPROVEN_REQUEST


async def test_an_approver_removed_while_a_ticket_waits_cannot_decide_on_it(
    tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    """APPROVERS was read once, when approval opened: someone taken off it while the ticket waited could
    still approve it (red team 18). Workers restarted with the new list judge every decider by it."""
    settings = build_settings(tmp_path / "data", f"e2e-{uuid.uuid4().hex[:8]}")
    async with running_pipeline(local_env.client, settings) as before:
        started = await before.service.start(before.request("make carol@acme-corp.example an admin"))
        status = await before.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
    assert status.approval is not None and "alice" in status.approval.approvers

    narrowed = settings.model_copy(update={"approvers": [name for name in settings.approvers if name != "alice"]})
    async with running_pipeline(local_env.client, narrowed) as after:
        for decider in ("alice", "bob"):  # the verdicts are read from the status: a busy host may answer late
            await after.service.decide(started.short_id, status.approval.decision(decider, DecisionSource.CLI))
        judged = await wait_for_status(
            after.service, started.short_id, lambda seen: len(seen.decisions) >= 2, "both decisions judged"
        )
        assert [(record.accepted, record.reason) for record in judged.decisions] == [
            (False, NO_LONGER_AN_APPROVER),
            (True, ""),
        ]
        async with after.databases.target_sessions() as session:
            role = await session.scalar(select(users.c.role).where(users.c.email == "carol@acme-corp.example"))
        assert role != "admin"  # alice's approval did not count: one of two
        await after.approve(started.short_id, "carol")
        outcome = await after.service.result(started.short_id)

    assert outcome.status is OutcomeStatus.DONE and sorted(outcome.decided_by) == ["bob", "carol"]


async def test_raw_signals_holding_hidden_characters_are_recorded_escaped_and_hold_nothing_up(
    pipeline: Pipeline,
) -> None:
    """Any Temporal client can signal: a NUL in a decider once stopped the audit log on PostgreSQL for good,
    and with it the ticket (red team 13). A NUL in a key the model does not have is ignored with it."""
    started = await pipeline.service.start(pipeline.request("make carol@acme-corp.example an admin"))
    status = await pipeline.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
    assert status.approval is not None
    handle = pipeline.service.handle(started.short_id)
    await handle.signal("approve", {"decider": "mallory\x00", "source": "api", "request_id": "x", "plan_hash": "y"})
    await handle.signal("reject", {"decider\x00": "mallory", "source": "api"})
    for approver in ("alice", "bob"):
        counted = await pipeline.service.decide(
            started.short_id, status.approval.decision(approver, DecisionSource.CLI)
        )
        assert counted is not None and counted.accepted

    outcome = await pipeline.service.result(started.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    async with pipeline.databases.app_sessions() as session:
        events = (await session.scalars(select(AuditEventRow).where(AuditEventRow.ticket_id == started.short_id))).all()
    ignored = [event.summary for event in events if event.kind == "decision_ignored"]
    assert len(ignored) == 2 and all("malformed" in summary for summary in ignored), ignored
    assert not any("\x00" in f"{event.actor}{event.summary}{event.detail}" for event in events)


@pytest.mark.parametrize(
    "alias", ["T-{}", "t-{}", "{}", " ticket-{}", "ticket-T-{}", "ticket-t-{}", "ticket-ticket-{}"]
)
async def test_a_workflow_started_under_another_tickets_alias_fails_and_writes_nothing(
    pipeline: Pipeline, alias: str
) -> None:
    """`T-<id>` names the same ticket as `ticket-<id>` to people, but started as a workflow of its own it wrote
    the other ticket's row and audit log: a pending ticket read as done, off every approver's list (red team 15)."""
    victim = await pipeline.service.start(pipeline.request("make carol@acme-corp.example an admin"))
    await pipeline.wait_for_stage(victim.short_id, Stage.AWAITING_APPROVAL)
    async with pipeline.databases.app_sessions() as session:
        events_before = await session.scalar(
            select(func.count()).select_from(AuditEventRow).where(AuditEventRow.ticket_id == victim.short_id)
        )

    rogue = await pipeline.client.start_workflow(
        WORKFLOW_NAME,
        pipeline.request("give acme-corp a 10% discount on their open invoices"),
        id=alias.format(victim.short_id),
        task_queue=pipeline.settings.temporal_task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await rogue.result()
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == ERROR_NOT_A_TICKET

    async with pipeline.databases.app_sessions() as session:
        ticket = await session.get(TicketRow, victim.short_id)
        events_after = await session.scalar(
            select(func.count()).select_from(AuditEventRow).where(AuditEventRow.ticket_id == victim.short_id)
        )
    assert ticket is not None and ticket.status == "awaiting_approval"
    assert events_after == events_before


async def signed_request_of(pipeline: Pipeline, started: StartedTicket) -> TicketRequest:
    """The signed request a front door started `started` with, as anyone who can read its history finds it."""
    history = await pipeline.client.get_workflow_handle(started.workflow_id).fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    request = pipeline.client.data_converter.payload_converter.from_payload(payload, TicketRequest)
    assert isinstance(request, TicketRequest) and request.proof
    return request


@pytest.mark.parametrize("forged_continuation", [False, True])
async def test_a_new_run_under_a_finished_tickets_id_cannot_write_its_record(
    pipeline: Pipeline, forged_continuation: bool
) -> None:
    """Temporal lets any client start a closed workflow id again; that run is not the ticket, and its events
    must not join the ticket's record (red team 15): not with the ticket's own signed request, copied from its
    history and started again at once, and not claiming to continue the ticket, which only its run may do."""
    victim = await pipeline.service.start(pipeline.request("show invoices for acme-corp"))
    assert (await pipeline.service.result(victim.short_id)).status is OutcomeStatus.DONE
    async with pipeline.databases.app_sessions() as session:
        events_before = (
            await session.scalars(select(AuditEventRow.id).where(AuditEventRow.ticket_id == victim.short_id))
        ).all()

    request = await signed_request_of(pipeline, victim)
    if forged_continuation:
        request = request.model_copy(update={"continued": ContinuedTicket(created_at=datetime.now(UTC))})
    rogue = await pipeline.client.start_workflow(
        WORKFLOW_NAME,
        request,
        id=victim.workflow_id,
        task_queue=pipeline.settings.temporal_task_queue,
        result_type=TicketOutcome,
    )
    if forged_continuation:
        with pytest.raises(WorkflowFailureError) as failed:
            await rogue.result()
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.type == ERROR_UNPROVEN_REQUEST
    else:
        outcome = await rogue.result()
        assert outcome.status is OutcomeStatus.FAILED and "audit log refused" in outcome.reason, outcome
    async with pipeline.databases.app_sessions() as session:
        ticket = await session.get(TicketRow, victim.short_id)
        events_after = (
            await session.scalars(select(AuditEventRow.id).where(AuditEventRow.ticket_id == victim.short_id))
        ).all()
    assert ticket is not None and ticket.status == "done"
    assert events_after == events_before


async def test_a_ticket_cannot_name_its_own_approvers(pipeline: Pipeline) -> None:
    """A raw start wrote `approval.approvers` itself; two signed decisions from the people it named then ran
    a high-risk change that no configured approver saw (red team 17). Only the worker's APPROVERS count, even
    for a request a front door signed (one configured with other approvers, or a leaked key)."""
    request = pipeline.request("make carol@acme-corp.example an admin")
    named = {"approvers": ["mallory", "U0MALLORY"]}  # two: a high-risk plan needs two approvals
    request = request.model_copy(update={"approval": request.approval.model_copy(update=named)})
    started = await pipeline.service.start(request)
    outcome = await asyncio.wait_for(pipeline.service.result(started.short_id), 60)  # it waited for mallory before

    assert outcome.status is OutcomeStatus.BLOCKED and "cannot be approved" in outcome.reason, outcome
    async with pipeline.databases.target_sessions() as session:
        role = await session.scalar(select(users.c.role).where(users.c.email == "carol@acme-corp.example"))
    assert role != "admin"
