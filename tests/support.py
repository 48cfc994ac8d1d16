"""What many tests need, written once: settings, waiting on a ticket's status, an ASGI server, a scripted report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
import uvicorn
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.approvers import ConfiguredApprovers, LiteralApprovers
from activities.authority import ExecutionAuthority
from activities.trust import WorkerTrust
from core.bootstrap import Databases
from core.models import (
    ExecutePlanInput,
    Finding,
    OperationImpact,
    Plan,
    Risk,
    RowChange,
    SafetyReport,
    Stage,
    TicketStatus,
    plan_hash,
)
from core.names import QUERY_STATUS
from core.schema import TicketRow
from core.settings import Settings, load_settings
from service.tickets import TicketNotFound, TicketService

APPROVERS = ["alice", "bob", "carol"]
Result = TypeVar("Result")
# Front doors and workers of the tests share it, as production's do; decisions are signed and checked.
TEST_SIGNING_KEY = "test-decision-signing-key-0123456789abcdef"


def build_settings(data_dir: Path, task_queue: str | None = None, **overrides: object) -> Settings:
    """Embedded SQLite databases in `data_dir`, the offline planner, no Slack, three approvers; `overrides` win."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "openai_api_key": None,
        "slack_bot_token": None,
        "slack_signing_secret": None,
        "slack_app_token": None,
        "approvers": APPROVERS,
        "decision_signing_key": TEST_SIGNING_KEY,
        "_env_file": None,
    }
    if task_queue is not None:
        values["temporal_task_queue"] = task_queue
    values.update(overrides)
    return load_settings(**values)


async def wait_for_status(
    source: TicketService | WorkflowHandle[Any, Any],
    ticket: str,
    condition: Callable[[TicketStatus], bool],
    what: str = "the expected state",
    within: float = 30.0,
) -> TicketStatus:
    """The ticket's status once `condition` holds; a ticket not started yet (or not answering yet) is waited for.

    `source` is the service that reads `ticket`, or the ticket's workflow handle.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    status: TicketStatus | None = None
    while loop.time() < deadline:
        try:
            if isinstance(source, TicketService):
                status = await source.status(ticket)
            else:
                status = await source.query(QUERY_STATUS, result_type=TicketStatus)
        except (TicketNotFound, RPCError, WorkflowQueryFailedError):
            status = None
        if status is not None and condition(status):
            return status
        await asyncio.sleep(0.05)
    where = "not started" if status is None else f"{status.status_label} {status.outcome}"
    raise AssertionError(f"{ticket} never reached {what}; it is {where}")


async def wait_for_stage(
    source: TicketService | WorkflowHandle[Any, Any], ticket: str, stage: Stage, within: float = 60.0
) -> TicketStatus:
    """The status once the ticket reaches `stage`; fails at once if it finishes elsewhere."""

    def reached(status: TicketStatus) -> bool:
        if status.stage is not stage and status.outcome is not None:
            raise AssertionError(f"{ticket} finished ({status.outcome}) without reaching {stage.value}")
        return status.stage is stage

    return await wait_for_status(source, ticket, reached, stage.value, within)


async def recorded_at_stage(databases: Databases, ticket: str, stage: Stage, within: float = 30.0) -> None:
    """Until the ticket's record (its row in the app DB) reaches `stage`: a ticket's events are written from a
    workflow task after the one that queued them (`workflows/audit_log.py`), so the record follows its status."""
    deadline = time.monotonic() + within
    while True:
        async with databases.app_sessions() as session:
            recorded = await session.scalar(sqlalchemy.select(TicketRow.stage).where(TicketRow.ticket_id == ticket))
        if recorded == stage.value:
            return
        assert time.monotonic() < deadline, f"{ticket}'s record is at {recorded}, not {stage.value}"
        await asyncio.sleep(0.05)


class _QuietServer(uvicorn.Server):
    """Uvicorn without signal handlers: the test decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A socket on a free port of 127.0.0.1, bound before the app exists so a URL setting can name it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def base_url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def serve(app: Any, sock: socket.socket | None = None, *, lifespan: bool = False) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on `sock` (or a free port of 127.0.0.1) in this event loop; yields its URL."""
    own_socket = sock is None
    sock = sock or bound_socket()
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on" if lifespan else "off", timeout_graceful_shutdown=2
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield base_url_of(sock)
    finally:
        server.should_exit = True
        await task
        if own_socket:
            sock.close()


def scripted_report(plan: Plan, risk: Risk = Risk.LOW, required_approvals: int = 0) -> SafetyReport:
    """The report scripted safety steps give `plan`: one finding, one row of subscriptions from plan 1 to 3."""
    return SafetyReport(
        risk=risk,
        required_approvals=required_approvals,
        plan_hash=plan_hash(plan),
        findings=[Finding(rule="plan_change", risk=risk, message="changes a paid plan", operation_index=0)],
        impacts=[
            OperationImpact(
                operation_index=0,
                kind="update",
                table="subscriptions",
                rows_affected=1,
                preview=[RowChange(before={"plan_id": 1}, after={"plan_id": 3})],
            )
        ],
    )


def dev_authority() -> ExecutionAuthority:
    """What decides whether a plan may run as under `agent-ticket dev`: no judgement or signed approvals
    required, for tests of how plans run; tests/activities/test_authority.py checks the real requirements."""
    return ExecutionAuthority(WorkerTrust.of([], True, ConfiguredApprovers(LiteralApprovers(), APPROVERS)))


async def run_in_its_workflow(
    execute: Callable[[ExecutePlanInput], Awaitable[Result]], input: ExecutePlanInput
) -> Result:
    """Runs the executor as an activity of the workflow its input names: it refuses plans sent by another."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id=input.workflow_id)
    return await environment.run(execute, input)
