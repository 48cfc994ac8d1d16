"""Changes between approval and execution: a concurrent writer swaps which rows a plan's filters match.

Approvers approve the plan hash and the row keys the dry run showed. The execution re-runs the
plan in order and compares keys: on any difference it writes nothing and raises
`ApprovedRowsChanged`, and the workflow validates again and opens a new approval round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError

from activities.execution import ExecutionActivities
from core.demo import feature_flags, users
from core.models import ExecutePlanInput, Stage, TicketStatus
from core.names import ERROR_APPROVED_ROWS_CHANGED
from core.policy import PolicyCache
from tests.security.conftest import RedTeam, Snapshot, plan, update
from tests.support import dev_authority, run_in_its_workflow

pytestmark = pytest.mark.timeout(60)
CHANGES = "changes between approval and execution"


@pytest.fixture(autouse=True)
async def _undo_the_races(red_team: RedTeam) -> AsyncIterator[None]:
    """Each race's concurrent write is put back afterwards: the module shares one target DB."""
    engine = red_team.databases.target_engine
    async with engine.connect() as connection:
        name = await connection.scalar(select(users.c.name).where(users.c.id == 4))
        flags = [dict(row) for row in (await connection.execute(select(feature_flags))).mappings()]
    yield
    async with engine.begin() as connection:
        await connection.execute(sql_update(users).where(users.c.id == 4).values(name=name))
        await connection.execute(sql_delete(feature_flags))
        await connection.execute(sql_insert(feature_flags), flags)


async def _reuse_flag_7_for_acme(engine: AsyncEngine) -> None:
    """Found by the red team: delete globex's flag 7 and insert another customer's flag under key 7.
    The approved keys still match; the row they name is not the one approvers saw."""
    async with engine.begin() as connection:
        await connection.execute(sql_delete(feature_flags).where(feature_flags.c.id == 7))
        await connection.execute(sql_insert(feature_flags).values(id=7, customer_id=1, name="billing_v2", enabled=True))


async def _rename_user_4_grace(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(sql_update(users).where(users.c.id == 4).values(name="Grace"))


async def _swap_globex_flags(engine: AsyncEngine) -> None:
    """Same number of enabled flags at globex, different ones: a row count alone cannot tell."""
    async with engine.begin() as connection:
        await connection.execute(sql_update(feature_flags).where(feature_flags.c.id == 6).values(enabled=False))
        await connection.execute(sql_update(feature_flags).where(feature_flags.c.id == 5).values(enabled=True))


@dataclass(frozen=True)
class Race:
    name: str
    text: str
    plan: dict[str, Any]
    approvals: int
    keys: list[list[str]]
    concurrent_write: Callable[[AsyncEngine], Awaitable[None]]


RACES = [
    Race(
        "reused-key",
        "disable flags 6 and 7",
        plan("Disable.", update("feature_flags", {"enabled": False}, ("id", "in", [6, 7]))),
        1,
        [["6", "7"]],
        _reuse_flag_7_for_acme,
    ),
    Race(
        "rename-adds-a-match",
        "make Grace at globex an admin",
        plan("Promote Grace.", update("users", {"role": "admin"}, ("name", "eq", "Grace"), ("customer_id", "eq", 2))),
        2,
        [["7"]],
        _rename_user_4_grace,
    ),
    Race(
        "swap-keeps-the-count",
        "disable globex's enabled flags",
        plan(
            "Disable.",
            update("feature_flags", {"enabled": False}, ("customer_id", "eq", 2), ("enabled", "eq", True)),
        ),
        1,
        [["6", "7"]],
        _swap_globex_flags,
    ),
]


async def _approved_and_raced(red_team: RedTeam, race: Race, tag: str) -> tuple[TicketStatus, Snapshot]:
    """The ticket waits for approval with the target unchanged; then the concurrent writer strikes."""
    before = await red_team.snapshot()
    ticket = await red_team.submit(tag, race.plan, race.text)
    status = await red_team.settle(ticket)
    assert status.stage is Stage.AWAITING_APPROVAL and status.approval is not None, status.status_label
    assert status.approval.required_approvals == race.approvals
    assert status.report is not None and status.report.approved_row_keys == race.keys
    assert await red_team.snapshot() == before
    await race.concurrent_write(red_team.databases.target_engine)
    return status, await red_team.snapshot()


@pytest.mark.parametrize("race", RACES, ids=[race.name for race in RACES])
async def test_execution_refuses_rows_that_were_not_approved(red_team: RedTeam, race: Race) -> None:
    """The execution activity, given what the approved report showed, writes nothing and says why."""
    status, raced = await _approved_and_raced(red_team, race, f"{race.name}-activity")
    assert status.plan is not None and status.report is not None
    databases = red_team.databases
    executor = ExecutionActivities(databases.target_engine, dev_authority(), PolicyCache(databases.app_sessions))
    input = ExecutePlanInput(
        ticket_id=status.ticket_id,
        workflow_id=status.workflow_id,
        plan=status.plan,
        plan_hash=status.report.plan_hash,
        approved_rows=[impact.rows_affected for impact in status.report.impacts],
        approved_row_keys=status.report.approved_row_keys,
        approved_versions=[impact.rows_version for impact in status.report.impacts],
        approved_by=["alice", "bob"],
    )
    with pytest.raises(ApplicationError) as caught:
        await run_in_its_workflow(executor.execute_plan, input)
    assert caught.value.type == ERROR_APPROVED_ROWS_CHANGED and caught.value.non_retryable
    assert "rows changed since approval" in caught.value.message
    assert await red_team.snapshot() == raced  # nothing written
    await red_team.reject(status)
    red_team.results.append((CHANGES, race.name, "execution refused, nothing written"))


@pytest.mark.parametrize("race", RACES, ids=[race.name for race in RACES])
async def test_approved_ticket_whose_rows_changed_asks_again(red_team: RedTeam, race: Race) -> None:
    status, raced = await _approved_and_raced(red_team, race, f"{race.name}-ticket")
    assert status.approval is not None
    first_request = status.approval.request_id
    await red_team.pipeline.approve(status.ticket_id, *["alice", "bob"][: race.approvals])
    async with asyncio.timeout(30):
        while True:
            now = await red_team.pipeline.service.status(status.ticket_id)
            if now.outcome is not None:
                break
            if now.stage is Stage.AWAITING_APPROVAL and now.approval and now.approval.request_id != first_request:
                break
            await asyncio.sleep(0.05)
    assert await red_team.snapshot() == raced, "rows no one approved were written"
    assert now.outcome is None, now.outcome  # a new approval round, with the reason
    await red_team.reject(now)
