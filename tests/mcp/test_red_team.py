"""The red team's attacks on the MCP door, kept as tests.

F1: an agent proposes selects filtered on a private column (`id = 7 AND email >= '<guess>'`)
and reads the dry run's row count of each from `ticket_status` before anyone approves: one
comparison of the private value per ticket. F3: parallel wrong tokens from one address each
ran a full argon2 check (60 requests, all 401, bot memory past its limit).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.dashboard.auth import password_matches
from bot.dashboard.password_gate import PasswordCheckGate
from core.accounts import ARGON2_HASH, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM, MAX_ARGON2_TIME_COST
from core.demo import users
from core.models import (
    Finding,
    OutcomeStatus,
    Plan,
    Risk,
    SafetyReport,
    SelectOperation,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketSource,
    TicketStatus,
)
from core.names import short_id_from
from core.settings import ConfigError, load_settings
from mcp_door.http import AGENT_STATE_KEY, FAILED_TOKENS_PER_MINUTE, BearerAgentAuth
from mcp_door.identity import AgentDirectory, new_token
from mcp_door.views import TicketView
from tests.mcp.conftest import McpWorld
from tests.slack.conftest import ALICE

GOODBOT = new_token("goodbot")

# ---------------------------------------------------------------- F1: reading a private column through counts


def probe(user_id: int, guess: str) -> dict[str, Any]:
    """The red team's plan: one private comparison, answered by whether the select matches a row."""
    filters = [{"column": "id", "op": "eq", "value": user_id}, {"column": "email", "op": "ge", "value": guess}]
    return {
        "summary": f"look up user {user_id}",
        "operations": [{"kind": "select", "table": "users", "columns": ["id"], "filters": filters}],
    }


def agent_visible(view: dict[str, Any]) -> dict[str, Any]:
    """A view without what differs between any two tickets anyway (ids, links, the plan the agent wrote)."""
    return {key: value for key, value in view.items() if key not in {"ticket_id", "dashboard_url", "plan"}}


async def test_an_agent_cannot_read_a_private_column_through_dry_run_counts_before_approval(
    mcp_world: McpWorld,
) -> None:
    async with mcp_world.target_connection() as connection:
        email = str(await connection.scalar(select(users.c.email).where(users.c.id == 7)))
    async with mcp_world.agent("probe-bot") as agent:
        right = await agent.call_tool("propose_plan", probe(7, email[:3]))  # email >= its own prefix: 1 row
        wrong = await agent.call_tool("propose_plan", probe(7, email + "~"))  # past the email: 0 rows
        assert right.structured_content is not None and wrong.structured_content is not None, (right, wrong)
        labels = [right.structured_content["ticket_id"], wrong.structured_content["ticket_id"]]
        for label in labels:
            await awaiting_approval(mcp_world, label)  # the dry run has run
        views = [(await agent.call_tool("ticket_status", {"ticket_id": label})).structured_content for label in labels]

        click = await mcp_world.approve_in_slack(labels[0], ALICE)
        assert click.status_code == 200
        approved = await agent.call_tool("wait_for_ticket", {"ticket_id": labels[0], "timeout": 60})

    approvers = [await mcp_world.pipeline.service.status(short_id_from(label)) for label in labels]
    assert [status.report.impacts[0].rows_affected for status in approvers if status.report] == [1, 0]  # the oracle
    before = [view for view in views if view is not None]
    assert len(before) == 2
    for view in before:
        assert view["status"] == "awaiting_approval" and view["risk"] == "medium" and view["approvals_required"] == 1
        assert view["withheld"] is True
        assert view["rows_affected"] == [] and view["findings"] == [] and view["outcome"] is None
        assert {"private_read", "private_probe"} <= set(view["rules"])
    assert agent_visible(before[0]) == agent_visible(before[1])  # a true and a false guess look the same
    assert approved.structured_content is not None
    after = approved.structured_content
    assert after["status"] == "done" and after["withheld"] is False and after["outcome"]["decided_by"] == [ALICE]
    assert [row["rows"] for row in after["rows_affected"]] == [1]  # once a person said yes, the agent may know


async def awaiting_approval(world: McpWorld, label: str) -> None:
    for _ in range(300):
        if (await world.pipeline.service.status(short_id_from(label))).stage is Stage.AWAITING_APPROVAL:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{label} never came to wait for approval")


def blocked_status(findings: list[Finding], outcome: OutcomeStatus, decided_by: list[str]) -> TicketStatus:
    now = datetime.now(UTC)
    plan = Plan(summary="probe", operations=[SelectOperation(table="users", columns=["id"])], planner="agent:x")
    request = TicketRequest(text="probe", requester="agent:x", source=TicketSource.MCP, proposed_plan=plan)
    report = SafetyReport(risk=max((f.risk for f in findings), key=lambda r: r.rank), findings=findings)
    reason = "; ".join(f.message for f in findings)
    return TicketStatus(
        ticket_id="abc",
        workflow_id="ticket-abc",
        request=request,
        stage=Stage.FINISHED,
        created_at=now,
        updated_at=now,
        plan=plan,
        report=report,
        outcome=TicketOutcome(status=outcome, reason=reason, decided_by=decided_by, finished_at=now),
    )


def test_a_blocked_or_unapproved_ticket_names_only_the_rules_judged_from_the_plan() -> None:
    findings = [
        Finding(rule="tenants", risk=Risk.HIGH, message="The plan changes rows of 12 tenants (1, 10, 11, 12, 2)."),
        Finding(rule="rows_returned", risk=Risk.BLOCKED, message="The plan's selects return 101 rows in all."),
        Finding(
            rule="private_probe", risk=Risk.MEDIUM, message="Tests private column email of users.", operation_index=0
        ),
    ]
    view = TicketView.of(blocked_status(findings, OutcomeStatus.BLOCKED, []), "https://t.example.com")
    assert view.rules == ["private_probe"] and view.findings == []
    assert view.outcome is not None and view.outcome.status == "blocked"
    assert not any(char.isdigit() for char in view.outcome.reason), view.outcome.reason
    rejected = TicketView.of(blocked_status(findings, OutcomeStatus.REJECTED, [ALICE]), "https://t.example.com")
    assert rejected.withheld and rejected.findings == []  # a person said no: nothing the plan read is shown


# ---------------------------------------------------------------- F3: flooding the token check


class CountingVerifier:
    """The real argon2 check, counted: how many ran, and the most at once; each waits for `release`."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.calls = 0
        self.in_flight = 0
        self.most = 0

    def __call__(self, password_hash: str, token: str) -> bool:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.release.wait(timeout=30)
            return password_matches(password_hash, token)
        finally:
            with self._lock:
                self.in_flight -= 1


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


async def test_a_flood_of_wrong_tokens_is_refused_fast_and_never_checks_more_than_the_cap_at_once() -> None:
    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(getattr(request.state, AGENT_STATE_KEY).name)

    verifier = CountingVerifier()
    gate = PasswordCheckGate(slots=2, max_waiting=4, wait_seconds=60)  # the door's slots; a wait no test outlasts
    directory = AgentDirectory(load_settings(_env_file=None, mcp_agents=GOODBOT.entry).mcp_agents, gate, verifier)
    app = BearerAgentAuth(Starlette(routes=[Route("/mcp", whoami)]), directory)
    first: list[httpx.Response] = []
    second: list[httpx.Response] = []

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://door") as http:

        async def guess(n: int, into: list[httpx.Response]) -> None:
            into.append(await http.post("/mcp", headers={"Authorization": f"Bearer goodbot.wrong{n}"}))

        flood = [asyncio.create_task(guess(n, first)) for n in range(60)]
        # All but the checks in their slots and the few waiting for one are answered before any check ends.
        await until(lambda: len(first) == 60 - 2 - 4 and verifier.in_flight == 2, "the refusals before any check ends")
        refused_fast = [response.status_code for response in first]
        verifier.release.set()
        await asyncio.gather(*flood)
        await asyncio.gather(*(guess(n, second) for n in range(60)))  # the red team's flood again, from one address

    assert set(refused_fast) <= {429, 503} and len(refused_fast) == 54
    assert all(response.headers["Retry-After"] for response in first + second if response.status_code != 401)
    assert Counter(response.status_code for response in first)[401] == 2 + 4  # the slots, then those that waited
    assert verifier.most == 2  # never more argon2 checks at once than the gate's slots
    # Each check was admitted, and recorded, before it ran: one address gets its 10 a minute, however parallel.
    assert verifier.calls == FAILED_TOKENS_PER_MINUTE
    assert Counter(response.status_code for response in second) == {401: 4, 429: 56}


def test_mcp_agents_refuse_a_hash_costlier_than_the_dashboard_accepts() -> None:
    costly = GOODBOT.entry.replace("m=19456,t=2,p=1", "m=1048576,t=2,p=1")
    assert costly != GOODBOT.entry
    with pytest.raises(ConfigError, match="at most m="):
        load_settings(_env_file=None, mcp_agents=costly)


def test_mcp_token_makes_hashes_within_the_cost_limit() -> None:
    match = ARGON2_HASH.match(GOODBOT.entry.partition(":")[2])
    assert match is not None
    assert int(match["m"]) <= MAX_ARGON2_MEMORY_KIB
    assert int(match["t"]) <= MAX_ARGON2_TIME_COST
    assert int(match["p"]) <= MAX_ARGON2_PARALLELISM
