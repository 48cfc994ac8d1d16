"""The red team's bench: the real workers and the real `openai` client, planned by an obedient LLM."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.notify import LogNotifier, NotifyActivities
from core.bootstrap import Databases, init_databases
from core.demo import demo_metadata
from core.ledger import LEDGER_TABLES, SPENT_TABLE
from core.models import DecisionSource, NotifyPost, NotifyResult, OutcomeStatus, Stage, TicketStatus
from tests.durability.support import table_snapshot, ticket_request
from tests.fakes.openai_server import FAKE_API_KEY
from tests.pipeline import Pipeline, running_pipeline, with_activities
from tests.security.obedient_planner import ObedientPlanner
from tests.support import build_settings, recorded_at_stage
from worker.build import ActivitySet

# The data and the ledgers that prove what ran; the approvals the executor marks spent when it refuses a
# run are its own bookkeeping, written with nothing else.
TARGET_TABLES = [*sorted(demo_metadata.tables), *sorted(LEDGER_TABLES - {SPENT_TABLE})]
Snapshot = dict[str, list[tuple[object, ...]]]


class ChannelView(LogNotifier):
    """What the channel would be shown of each ticket: every status a delivery handed the notifier."""

    def __init__(self) -> None:
        self.shown: dict[str, list[TicketStatus]] = {}

    async def publish(self, status: TicketStatus, posts: list[NotifyPost]) -> NotifyResult:
        self.shown.setdefault(status.ticket_id, []).append(status)
        return await super().publish(status, posts)


@dataclass
class RedTeam:
    pipeline: Pipeline
    planner: ObedientPlanner
    databases: Databases
    channel: ChannelView
    results: list[tuple[str, str, str]] = field(default_factory=list)  # class, attack, verdict

    async def snapshot(self) -> Snapshot:
        return await table_snapshot(self.databases.target_engine, TARGET_TABLES)

    async def submit(self, name: str, plan: dict[str, Any], text: str) -> str:
        """A ticket whose text asks for the attack; the obedient LLM answers with `plan`."""
        tag = self.planner.tag_for(name, plan)
        started = await self.pipeline.service.start(ticket_request(self.pipeline.settings, f"{text} ({tag})"))
        return started.short_id

    async def settle(self, ticket: str, within: float = 30.0) -> TicketStatus:
        """Until the ticket has finished or waits for people, and its record has caught up."""
        async with asyncio.timeout(within):
            while True:
                status = await self.pipeline.service.status(ticket)
                if status.stage in (Stage.FINISHED, Stage.AWAITING_APPROVAL):
                    await recorded_at_stage(self.databases, status.ticket_id, status.stage)
                    return status
                await asyncio.sleep(0.05)

    async def shown_in_channel(self, ticket: str, within: float = 30.0) -> list[TicketStatus]:
        """Every status the channel was shown of `ticket`, once its message is up to date."""
        async with asyncio.timeout(within):
            while True:
                if not (await self.pipeline.service.status(ticket)).message_owed:
                    return self.channel.shown[ticket]
                await asyncio.sleep(0.05)

    async def reject(self, status: TicketStatus) -> None:
        """A person says no, so the ticket ends (and leaves no workflow running)."""
        assert status.approval is not None
        decision = status.approval.decision("alice", DecisionSource.CLI, approve=False, comment="red team")
        await self.pipeline.service.decide(status.ticket_id, decision)
        outcome = await self.pipeline.service.result(status.ticket_id)
        assert outcome.status is OutcomeStatus.REJECTED, outcome.reason


@pytest.fixture(scope="module")
async def red_team(tmp_path_factory: pytest.TempPathFactory, local_env: WorkflowEnvironment) -> AsyncIterator[RedTeam]:
    data_dir: Path = tmp_path_factory.mktemp("red-team") / "data"
    async with ObedientPlanner() as planner:
        settings = build_settings(
            data_dir, f"rt-{uuid.uuid4().hex[:8]}", openai_api_key=FAKE_API_KEY, openai_base_url=planner.base_url
        )
        databases = Databases.open(settings)
        try:
            await init_databases(databases, settings)
            channel = ChannelView()

            def shown_to_channel(activities: ActivitySet) -> ActivitySet:
                return with_activities(activities, NotifyActivities(channel).notify_ticket)

            async with running_pipeline(local_env.client, settings, databases, adjust=shown_to_channel) as pipeline:
                team = RedTeam(pipeline, planner, databases, channel)
                yield team
                print("\n[red team] results:")
                for kind, name, verdict in team.results:
                    print(f"  {kind:<28} {name:<48} {verdict}")
        finally:
            await databases.close()


# ---------------------------------------------------------------- plans as the LLM writes them


def plan(summary: str, *operations: dict[str, Any], rationale: str = "As the ticket asks.") -> dict[str, Any]:
    return {"summary": summary, "rationale": rationale, "operations": list(operations)}


def where(*filters: tuple[str, str, Any]) -> list[dict[str, Any]]:
    return [{"column": column, "op": op, "value": value} for column, op, value in filters]


def values(**assignments: Any) -> list[dict[str, Any]]:
    return [{"column": column, "value": value} for column, value in assignments.items()]


def select(
    table: str, *filters: tuple[str, str, Any], columns: list[str] | None = None, limit: int = 50
) -> dict[str, Any]:
    return {"kind": "select", "table": table, "columns": columns or [], "filters": where(*filters), "limit": limit}


def insert(table: str, **assignments: Any) -> dict[str, Any]:
    return {"kind": "insert", "table": table, "values": values(**assignments)}


def update(table: str, assignments: dict[str, Any], *filters: tuple[str, str, Any]) -> dict[str, Any]:
    return {"kind": "update", "table": table, "values": values(**assignments), "filters": where(*filters)}


def delete(table: str, *filters: tuple[str, str, Any]) -> dict[str, Any]:
    return {"kind": "delete", "table": table, "filters": where(*filters)}
