"""A world for chaos tests: the real activities and workers, fake Slack and OpenAI servers, SQLite
databases, on the time-skipping server, with ten tickets in flight at every stage of their path.

Tickets are placed before an outage begins: some wait for approval, some are held at a gate in
planning or execution (the gate opens as the outage begins, so the step meets the outage), some
are approved and some submitted just as it begins. Time stands still while the world is set up;
the outage then lasts `duration` on the server's clock, which the time-skipping server jumps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from activities.context import ContextActivities
from activities.offline_planner import plan_offline
from core import names
from core.bootstrap import Databases, init_databases
from core.decision_proof import sign_decision
from core.models import (
    ApprovalRequest,
    ApprovalSettings,
    DecisionSource,
    GatherContextInput,
    Plan,
    PlanTicketInput,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketSource,
    TicketStatus,
)
from core.request_proof import sign_request
from core.settings import Settings
from tests.chaos.faults import AttemptLog, ticket_of, wrapped
from tests.chaos.outages import WorkerDown
from tests.chaos.waiting import eventually
from tests.fakes.openai_server import FAKE_API_KEY, FakeOpenAIServer, json_reply
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack
from tests.support import APPROVERS, build_settings
from worker.activities import build_activity_set
from worker.build import build_workers

CHANNEL = "C0TICKETS"
LOW_RISK = "upgrade acme-corp to the pro plan"  # runs without approval
HIGH_RISK = "make carol@acme-corp.example an admin"  # needs two approvers


class Role(StrEnum):
    """Where a ticket stands when the outage begins."""

    RECEIVED = "received"  # submitted as it begins
    PLANNING = "planning"  # its LLM call is under way
    AWAITING = "awaiting approval"  # waits through it; approved after it ends
    APPROVED = "approved"  # both approvals sent as it begins
    EXECUTING = "executing"  # its plan is being run


ROSTER = [Role.RECEIVED, Role.PLANNING, Role.AWAITING, Role.APPROVED, Role.EXECUTING] * 2


@dataclass
class Ticket:
    role: Role
    request: TicketRequest
    workflow_id: str
    handle: WorkflowHandle[Any, TicketOutcome] | None = None
    approval: ApprovalRequest | None = None  # read while placing it, so approving needs no query

    @property
    def ticket_id(self) -> str:
        return names.short_id_from(self.workflow_id)

    @property
    def needs_approval(self) -> bool:
        return self.role in (Role.AWAITING, Role.APPROVED)


class Gates:
    """Holds chosen tickets at chosen steps (heartbeating, as the real step would) until opened."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, str], asyncio.Event] = {}
        self.reached: set[tuple[str, str]] = set()

    def hold(self, step: str, ticket_id: str) -> None:
        self._gates[(step, ticket_id)] = asyncio.Event()

    def open_all(self) -> None:
        for gate in self._gates.values():
            gate.set()

    async def __call__(self, name: str, argument: Any) -> None:
        key = (name, ticket_of(argument))
        gate = self._gates.get(key)
        if gate is None:
            return
        self.reached.add(key)
        while not gate.is_set():
            activity.heartbeat()
            with suppress(TimeoutError):
                await asyncio.wait_for(gate.wait(), 0.5)


class PlanningOpenAI(FakeOpenAIServer):
    """The fake OpenAI server answering each ticket with the plan the offline planner makes of its text."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[str, Plan] = {}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        asked = await request.text()  # aiohttp keeps the body, so the base class reads it again
        text = next((text for text in self.plans if text in asked), None)
        if text is not None:
            self.enqueue(json_reply(self.plans[text]))
        return await super()._handle(request)

    @property
    def runner(self) -> web.AppRunner | None:
        return self._runner

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port


class Clock(Protocol):
    """The server's clock: the time-skipping server's (which `sleep` jumps) or a real server's."""

    async def sleep(self, duration: timedelta) -> None: ...

    async def get_current_time(self) -> datetime: ...


class RealClock:
    async def sleep(self, duration: timedelta) -> None:
        await asyncio.sleep(duration.total_seconds())

    async def get_current_time(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ChaosWorld:
    client: Client  # starts tickets and waits for them (on the time-skipping server, waiting lets time skip)
    clock: Clock
    settings: Settings
    databases: Databases
    slack: FakeSlack
    openai: PlanningOpenAI
    workers: WorkerDown
    attempts: AttemptLog = field(default_factory=AttemptLog)
    gates: Gates = field(default_factory=Gates)
    tickets: list[Ticket] = field(default_factory=list)
    began: datetime | None = None
    outcomes: dict[str, TicketOutcome] = field(default_factory=dict)

    def of(self, *roles: Role) -> list[Ticket]:
        return [ticket for ticket in self.tickets if ticket.role in roles]

    async def now(self) -> datetime:
        return await self.clock.get_current_time()

    async def start(self, ticket: Ticket) -> None:
        """Started as a front door starts it: the request signed for the ticket's id."""
        key = self.settings.signing_key
        assert key is not None
        request = sign_request(ticket.request, ticket.workflow_id, key, await self.now())
        ticket.handle = await self.client.start_workflow(
            names.WORKFLOW_NAME,
            request,
            id=ticket.workflow_id,
            task_queue=self.settings.temporal_task_queue,
            result_type=TicketOutcome,
        )

    async def status(self, ticket: Ticket) -> TicketStatus:
        assert ticket.handle is not None
        return await ticket.handle.query(names.QUERY_STATUS, result_type=TicketStatus)

    async def approve(self, ticket: Ticket) -> None:
        """Both approvals, signed as a front door signs them, sent as signals (no worker need answer)."""
        assert ticket.approval is not None and ticket.handle is not None
        key = self.settings.signing_key
        assert key is not None
        for decider in ("alice", "bob"):
            decision = ticket.approval.decision(decider, DecisionSource.SLACK)
            signed = sign_decision(decision, key, datetime.now().astimezone())
            await ticket.handle.signal(names.SIGNAL_APPROVE, signed)

    async def place(self) -> None:
        """Every ticket but the received ones started and standing where its role says, time standing still."""
        for ticket in self.tickets:
            if ticket.role is Role.PLANNING:
                self.gates.hold(names.ACTIVITY_PLAN_TICKET, ticket.ticket_id)
            if ticket.role is Role.EXECUTING:
                self.gates.hold(names.ACTIVITY_EXECUTE_PLAN, ticket.ticket_id)
        placed = self.of(Role.PLANNING, Role.AWAITING, Role.APPROVED, Role.EXECUTING)
        await asyncio.gather(*(self.start(ticket) for ticket in placed))
        for ticket in self.of(Role.AWAITING, Role.APPROVED):
            status = await eventually(partial(self.status, ticket), lambda s: s.stage is Stage.AWAITING_APPROVAL)
            ticket.approval = status.approval
        held = {(names.ACTIVITY_PLAN_TICKET, t.ticket_id) for t in self.of(Role.PLANNING)} | {
            (names.ACTIVITY_EXECUTE_PLAN, t.ticket_id) for t in self.of(Role.EXECUTING)
        }
        await eventually(lambda: _now(self.gates.reached), lambda reached: held <= reached, what="held steps")

    async def as_outage_begins(self) -> None:
        """What happens as the outage begins: held steps go on, approvals and new tickets arrive."""
        self.gates.open_all()
        await asyncio.gather(
            *(self.start(ticket) for ticket in self.of(Role.RECEIVED)),
            *(self.approve(ticket) for ticket in self.of(Role.APPROVED)),
        )

    async def until_waiting_out(self, *roles: Role) -> None:
        """Until each ticket of `roles` has failed a regular (not local) attempt: its step's bound is running.

        Time stands still meanwhile, so every bound starts as the outage begins. Without this wait one
        such ticket once ended `done` in CI (2026-12-06), its bound having started late; not reproduced.
        """

        async def waiting() -> set[str]:
            return {a.ticket_id for a in self.attempts.attempts if not a.ok and not a.local}

        wanted = {ticket.ticket_id for ticket in self.of(*roles)}
        await eventually(waiting, lambda seen: wanted <= seen, what=f"failed regular attempts of {sorted(wanted)}")

    async def settle(self, within: float = 90.0) -> None:
        """Wait for every ticket's outcome; waiting lets the time-skipping server skip to each next timer.

        One at a time: the time-skipping server does not take concurrent waits (each unlocks and relocks time).
        """
        async with asyncio.timeout(within):
            for ticket in self.tickets:
                assert ticket.handle is not None
                self.outcomes[ticket.ticket_id] = await ticket.handle.result()

    def outcome_of(self, ticket: Ticket) -> TicketOutcome:
        return self.outcomes[ticket.ticket_id]


async def _now(value: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return set(value)


def new_ticket(role: Role, index: int) -> Ticket:
    text = HIGH_RISK if role in (Role.AWAITING, Role.APPROVED) else LOW_RISK
    request = TicketRequest(
        text=text,
        requester=f"requester{index}",
        source=TicketSource.SLACK,
        channel=CHANNEL,
        approval=ApprovalSettings(approvers=APPROVERS),
    )
    return Ticket(role, request, f"ticket-chaos{uuid.uuid4().hex[:8]}")


async def offline_plans(databases: Databases, texts: list[str]) -> dict[str, Plan]:
    """The plan the offline planner makes of each text, for the fake OpenAI server to answer with."""
    context = ContextActivities(databases.app_sessions, databases.app_reads, databases.target_reads)
    plans = {}
    for text in texts:
        request = TicketRequest(text=text, requester="setup")
        gathered = await context.gather_context(GatherContextInput(ticket_id="setup", request=request))
        plans[text] = plan_offline(PlanTicketInput(ticket_id="setup", request=request, context=gathered))
    return plans


def chaos_settings(data_dir: Path, slack: FakeSlack, openai: FakeOpenAIServer) -> Settings:
    return build_settings(
        data_dir,
        f"chaos-{uuid.uuid4().hex[:8]}",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="chaos-signing-secret",
        slack_api_url=slack.api_url,
        openai_api_key=FAKE_API_KEY,
        openai_base_url=openai.base_url,
        openai_timeout_seconds=5.0,
    )


@asynccontextmanager
async def chaos_world(client: Client, clock: Clock, worker_client: Client, data_dir: Path) -> AsyncIterator[ChaosWorld]:
    """The world on `client`'s server; its workers on `worker_client` (the same server, Core logs captured)."""
    async with AsyncExitStack() as stack:
        slack = await FakeSlack().start()
        stack.push_async_callback(slack.stop)
        openai = PlanningOpenAI()
        await stack.enter_async_context(openai)
        settings = chaos_settings(data_dir, slack, openai)
        databases = Databases.open(settings)
        stack.push_async_callback(databases.close)
        await init_databases(databases, settings)
        openai.plans = await offline_plans(databases, [LOW_RISK, HIGH_RISK])
        attempts, gates = AttemptLog(), Gates()

        async def start_workers(workers: AsyncExitStack) -> None:
            activities = build_activity_set(settings, databases)
            workers.push_async_callback(activities.close)
            for worker in build_workers(
                worker_client, wrapped(activities, gates, attempts), task_queue=settings.temporal_task_queue
            ):
                await workers.enter_async_context(worker)

        workers = WorkerDown(start_workers)
        await workers.start()
        stack.push_async_callback(workers.close)
        world = ChaosWorld(client, clock, settings, databases, slack, openai, workers, attempts, gates)
        world.tickets = [new_ticket(role, index) for index, role in enumerate(ROSTER)]
        yield world
