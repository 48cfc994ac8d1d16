"""LLM faults through the fake OpenAI server: real `OpenAIPlanner`, real workers, the session's dev server.

Each scenario gets a fake of its own and a task queue of its own, and all scenarios run at
once (the slow ones wait on Retry-After and retry back-off, not on CPU). Every ticket must
end `done`, or `failed` with the cause in its reason, in the workflow and in the app DB's
ticket list; and the fake must have been called no more often than the retry policy allows.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases, init_databases
from core.demo import subscriptions
from core.models import OutcomeStatus, TicketOutcome
from core.schema import TicketRow
from tests.durability.support import ledger_rows, openai_pipeline, ticket_request
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    ScriptedReply,
    connection_reset_reply,
    content_reply,
    error_reply,
    json_reply,
    length_reply,
    rate_limited_reply,
    refusal_reply,
    server_error_reply,
    slow_reply,
    unauthorized_reply,
)
from tests.support import build_settings

# Planning retries for as long as its schedule-to-close time (30 minutes; an outage that long is in
# tests/chaos on the time-skipping server); none of these scenarios needs more than a few calls.
CALL_BUDGET = 12
CLIENT_TIMEOUT_SECONDS = 1.0
SLOWER_THAN_TIMEOUT = 2.5
TIMER_SLACK = 0.05  # server timers are not early; this only absorbs clock rounding


class TimedFakeOpenAI(FakeOpenAIServer):
    """The fake, also noting when each request arrived, so Retry-After gaps can be checked."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        return await super()._handle(request)


def gaps(arrivals: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(arrivals)]


def plan_for(subscription_id: int) -> dict[str, object]:
    """What a well-behaved LLM answers: move one subscription to the pro plan (low risk, runs at once)."""
    return {
        "summary": f"Move subscription {subscription_id} to the pro plan.",
        "rationale": "The ticket asks for the pro plan; plan 3 is pro.",
        "operations": [
            {
                "kind": "update",
                "table": "subscriptions",
                "values": [{"column": "plan_id", "value": 3}],
                "filters": [{"column": "id", "op": "eq", "value": subscription_id}],
            }
        ],
    }


def rate_limited(seconds: int) -> ScriptedReply:
    return rate_limited_reply(retry_after=str(seconds))


@dataclass
class Scenario:
    name: str
    replies: list[ScriptedReply]
    status: OutcomeStatus
    calls: int
    reason: str = ""  # must appear in the outcome's reason when the ticket fails
    retry_after: list[float] = field(default_factory=list)  # the minimum gap before each retried call
    subscription_id: int = 0  # the row a successful plan updates (0: the ticket fails)


def scenarios() -> list[Scenario]:
    storm = [2, 1, 1, 1]  # the first wait is longer than the policy's 1 s first back-off
    return [
        Scenario(
            "429 storm, then an answer",
            [*(rate_limited(s) for s in storm), json_reply(plan_for(11))],
            OutcomeStatus.DONE,
            calls=len(storm) + 1,
            retry_after=[float(s) for s in storm],
            subscription_id=11,
        ),
        Scenario(
            "500 and 503, then an answer",
            [server_error_reply(500), server_error_reply(503), json_reply(plan_for(12))],
            OutcomeStatus.DONE,
            calls=3,
            subscription_id=12,
        ),
        Scenario(
            "time-outs, then an answer",
            [slow_reply(SLOWER_THAN_TIMEOUT), slow_reply(SLOWER_THAN_TIMEOUT), json_reply(plan_for(13))],
            OutcomeStatus.DONE,
            calls=3,
            subscription_id=13,
        ),
        Scenario(
            "connection resets, then an answer",
            [connection_reset_reply(), connection_reset_reply(), json_reply(plan_for(14))],
            OutcomeStatus.DONE,
            calls=3,
            subscription_id=14,
        ),
        Scenario(
            "invalid JSON, fixed on the re-ask",
            [content_reply('{"summary": "Move it", "operations": [,]}'), json_reply(plan_for(15))],
            OutcomeStatus.DONE,
            calls=2,
            subscription_id=15,
        ),
        Scenario(
            "invalid JSON twice",
            [content_reply("Sure! Here is the plan: UPDATE subscriptions ..."), content_reply("{")],
            OutcomeStatus.FAILED,
            calls=2,
            reason="still invalid after one re-ask",
        ),
        Scenario(
            "refusal",
            [refusal_reply("I can't help with changing billing data.")],
            OutcomeStatus.FAILED,
            calls=1,
            reason="refused to plan",
        ),
        Scenario("answer cut off", [length_reply()], OutcomeStatus.FAILED, calls=1, reason="cut off"),
        Scenario("bad API key", [unauthorized_reply()], OutcomeStatus.FAILED, calls=1, reason="answered 401"),
        Scenario(
            "quota exhausted",
            [
                error_reply(
                    429, "You exceeded your current quota.", type="insufficient_quota", code="insufficient_quota"
                )
            ],
            OutcomeStatus.FAILED,
            calls=1,
            reason="exceeded your current quota",
        ),
    ]


@dataclass
class Result:
    scenario: Scenario
    fake: TimedFakeOpenAI
    outcome: TicketOutcome
    listed_status: str | None
    seconds: float


async def run_scenario(scenario: Scenario, data_dir: Path, databases: Databases, env: WorkflowEnvironment) -> Result:
    """One ticket through its own fake and its own workers, to its end."""
    fake = TimedFakeOpenAI()
    async with (
        fake,
        openai_pipeline(
            fake, data_dir, databases, env.client, openai_timeout_seconds=CLIENT_TIMEOUT_SECONDS
        ) as pipeline,
    ):
        fake.enqueue(*scenario.replies)
        service = pipeline.service
        began = time.monotonic()
        text = f"move subscription {scenario.subscription_id} to pro"
        started = await service.start(ticket_request(pipeline.settings, text))
        outcome = await service.result(started.short_id)
        seconds = time.monotonic() - began
        async with databases.app_sessions() as session:
            row = await session.get(TicketRow, started.short_id)
        if outcome.status is OutcomeStatus.DONE:
            assert await ledger_rows(databases, started.workflow_id) == 1, scenario.name
        return Result(scenario, fake, outcome, row.status if row else None, seconds)


@pytest.mark.timeout(120)
async def test_llm_faults_end_done_or_failed_with_the_cause_within_the_retry_policy(
    tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    data_dir = tmp_path / "data"
    databases = Databases.open(build_settings(data_dir, "unused"))
    try:
        await init_databases(databases, build_settings(data_dir, "unused"))
        results = await asyncio.wait_for(
            asyncio.gather(*(run_scenario(s, data_dir, databases, local_env) for s in scenarios())), timeout=100
        )
        print("\n[durability] LLM faults (real OpenAIPlanner against the fake OpenAI server):")
        for result in results:
            print(
                f"  {result.scenario.name}: {result.outcome.status.value} after {len(result.fake.requests)} "
                f"call(s) in {result.seconds:.1f} s"
                + (
                    f"; gaps {', '.join(f'{gap:.2f}' for gap in gaps(result.fake.arrivals))} s"
                    if result.scenario.retry_after
                    else ""
                )
            )

        for result in results:
            scenario, outcome = result.scenario, result.outcome
            assert outcome.status is scenario.status, (scenario.name, outcome.reason)
            assert result.listed_status == scenario.status.value, scenario.name  # what the ticket list shows
            assert len(result.fake.requests) == scenario.calls, scenario.name
            assert len(result.fake.requests) <= CALL_BUDGET, scenario.name
            assert scenario.reason in outcome.reason, (scenario.name, outcome.reason)
            waited = gaps(result.fake.arrivals)
            for gap, wanted in zip(waited, scenario.retry_after, strict=False):
                assert gap >= wanted - TIMER_SLACK, (scenario.name, waited)
            if scenario.status is OutcomeStatus.DONE:
                async with databases.target_engine.connect() as connection:
                    plan_id = await connection.scalar(
                        select(subscriptions.c.plan_id).where(subscriptions.c.id == scenario.subscription_id)
                    )
                assert plan_id == 3, scenario.name
    finally:
        await databases.close()
