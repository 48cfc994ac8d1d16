"""What a chaos test asserts after an outage, and what it measures for docs/reliability.md."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from temporalio.api.enums.v1 import WorkflowExecutionStatus

from core import names
from core.ledger import executions
from core.models import AuditEventKind, OutcomeStatus, TicketOutcome, TicketStatus
from core.schema import AuditEventRow
from rendering.slack import finished_message
from rendering.slack_ids import APPROVE_ACTION_ID, REJECT_ACTION_ID
from tests.chaos.world import CHANNEL, ChaosWorld, Role

# Every event a ticket's path records, once each (decisions once per approver).
LOW_PATH = Counter(
    [
        AuditEventKind.SUBMITTED,
        AuditEventKind.CONTEXT_GATHERED,
        AuditEventKind.PLANNED,
        AuditEventKind.VALIDATED,
        AuditEventKind.DECIDED,
        AuditEventKind.EXECUTED,
        AuditEventKind.FINISHED,
        AuditEventKind.NOTIFIED,
    ]
)
HIGH_PATH = LOW_PATH + Counter(
    [AuditEventKind.APPROVAL_REQUESTED, AuditEventKind.DECISION_ACCEPTED, AuditEventKind.DECISION_ACCEPTED]
)


@dataclass
class Measured:
    """One outage's numbers, as docs/reliability.md reports them."""

    done: int
    failed: int
    executed_after_end: float  # seconds from the outage's end to the last plan it held back (0: none held)
    finished_after_end: float  # seconds from the outage's end to the last outcome
    messages_after_end: float  # seconds from the outage's end to the last Slack delivery

    def row(self) -> str:
        return (
            f"done {self.done}, failed {self.failed}; last plan run {self.executed_after_end:.0f} s, last outcome "
            f"{self.finished_after_end:.0f} s, last Slack delivery {self.messages_after_end:.0f} s after the end"
        )


async def final_statuses(world: ChaosWorld) -> dict[str, TicketStatus]:
    return {ticket.ticket_id: await world.status(ticket) for ticket in world.tickets}


async def assert_no_workflow_failed(world: ChaosWorld) -> None:
    for ticket in world.tickets:
        assert ticket.handle is not None
        description = await ticket.handle.describe()
        assert description.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, ticket


async def executed_once(world: ChaosWorld, outcomes: dict[str, TicketOutcome]) -> None:
    """One ledger row for every ticket that ended done, none for the others: no plan ran twice."""
    async with world.databases.target_engine.connect() as connection:
        rows = (await connection.execute(select(executions.c.workflow_id))).scalars().all()
    counted = Counter(rows)
    for ticket in world.tickets:
        expected = 1 if outcomes[ticket.ticket_id].status is OutcomeStatus.DONE else 0
        assert counted[ticket.workflow_id] == expected, (ticket, outcomes[ticket.ticket_id])


async def audit_complete_and_once(world: ChaosWorld, outcomes: dict[str, TicketOutcome]) -> None:
    """The app DB holds each done ticket's path exactly, and never an event twice."""
    async with world.databases.app_sessions() as session:
        rows = (await session.scalars(select(AuditEventRow))).all()
    by_ticket: dict[str, Counter[str]] = {}
    for row in rows:
        by_ticket.setdefault(row.ticket_id, Counter())[row.kind] += 1
    for ticket in world.tickets:
        kinds = by_ticket.get(ticket.ticket_id, Counter())
        outcome = outcomes[ticket.ticket_id]
        if outcome.status is OutcomeStatus.DONE:
            path = HIGH_PATH if ticket.role in (Role.AWAITING, Role.APPROVED) else LOW_PATH
            trail = [
                (row.kind, row.summary, row.detail.get("event_key"))
                for row in rows
                if row.ticket_id == ticket.ticket_id
            ]
            assert kinds == Counter({kind.value: n for kind, n in path.items()}), (ticket.role, trail)
        else:
            assert kinds[AuditEventKind.FAILED.value] == 1 and kinds[AuditEventKind.EXECUTED.value] == 0, kinds
            assert all(n == 1 for kind, n in kinds.items() if kind != AuditEventKind.DECISION_ACCEPTED.value), kinds


def slack_caught_up(world: ChaosWorld, statuses: dict[str, TicketStatus]) -> None:
    """One message per ticket showing its outcome, no decision buttons left; one outcome reply; no reply twice."""
    slack = world.slack
    for ticket in world.tickets:
        status = statuses[ticket.ticket_id]
        assert not status.message_owed, status
        ref = status.slack_message
        assert ref is not None
        [message] = [m for m in slack.top_level(ref.channel) if m.ts == ref.ts]
        assert message.text == finished_message(status, world.settings.public_url).text
        assert not message.action_ids & {APPROVE_ACTION_ID, REJECT_ACTION_ID}  # Undo may stay, for its window
        keys = [str((m.metadata or {}).get("event_payload", {}).get("key")) for m in slack.thread(message)]
        assert len(keys) == len(set(keys)), keys
        assert len([key for key in keys if key.startswith("outcome")]) == 1, keys
    mine = {ticket.ticket_id for ticket in world.tickets}
    posted = Counter(str((m.metadata or {}).get("event_payload", {}).get("ticket")) for m in slack.top_level(CHANNEL))
    assert {ticket: n for ticket, n in posted.items() if ticket in mine} == dict.fromkeys(mine, 1)


def measure(world: ChaosWorld, outcomes: dict[str, TicketOutcome], ended: datetime) -> Measured:
    def after(moments: list[datetime]) -> float:
        return max([(moment - ended).total_seconds() for moment in moments if moment > ended], default=0.0)

    ran = [a.at for a in world.attempts.of(names.ACTIVITY_EXECUTE_PLAN, ok=True)]
    delivered = [a.at for a in world.attempts.of(names.ACTIVITY_NOTIFY, ok=True)]
    statuses = Counter(outcome.status for outcome in outcomes.values())
    return Measured(
        done=statuses[OutcomeStatus.DONE],
        failed=statuses[OutcomeStatus.FAILED],
        executed_after_end=after(ran),
        finished_after_end=after([outcome.finished_at for outcome in outcomes.values()]),
        messages_after_end=after(delivered),
    )
