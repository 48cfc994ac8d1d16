"""Block Kit rendering: every stage readable, Slack's limits kept, untrusted text defused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.models import (
    MAX_OPERATIONS,
    Assignment,
    Filter,
    FilterOperator,
    OutcomeStatus,
    Plan,
    Stage,
    UpdateOperation,
)
from core.schema import TicketRow
from rendering.slack import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    escalation_message,
    outcome_reply,
    pending_reply,
    reject_modal,
    reminder_message,
    status_reply,
    ticket_message,
)
from rendering.slack_ids import APPROVE_ACTION_ID, REJECT_ACTION_ID, ButtonValue, RejectModalMetadata
from tests.slack.statuses import APPROVERS, REQUESTER, awaiting, decision, finished, planned, received

PUBLIC_URL = "https://tickets.example.com"


def rendered(blocks: list[Any]) -> list[dict[str, Any]]:
    """Serialise as the SDK does before sending; this is where it enforces field limits."""
    return [block.to_dict() for block in blocks]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [element for block in blocks if block["type"] == "actions" for element in block["elements"]]


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (Stage.RECEIVED, "Received"),
        (Stage.GATHERING_CONTEXT, "Gathering context"),
        (Stage.PLANNING, "Planning"),
        (Stage.EXECUTING, "No approval needed"),
    ],
)
def test_stages_before_a_decision_have_no_buttons(stage: Stage, expected: str) -> None:
    status = received() if stage in (Stage.RECEIVED, Stage.GATHERING_CONTEXT, Stage.PLANNING) else planned()
    status.stage = stage

    blocks = rendered(ticket_message(status, PUBLIC_URL).blocks)

    assert expected in texts(blocks) and buttons(blocks) == []


def test_a_ready_plan_shows_summary_operations_risk_rows_and_preview() -> None:
    blocks = texts(rendered(ticket_message(awaiting(), PUBLIC_URL).blocks))

    assert "Move acme-corp to the pro plan" in blocks
    assert "*update* `subscriptions`: set `plan_id` = `3` where `customer_id` = `1`" in blocks
    assert ":red_circle: high" in blocks and "1 row affected" in blocks and "changes a paid plan" in blocks
    assert "`plan_id`: `1` → `3`" in blocks


def test_awaiting_approval_has_approve_reject_and_a_dashboard_link() -> None:
    status = awaiting()
    blocks = rendered(ticket_message(status, PUBLIC_URL).blocks)

    approve, reject, dashboard = buttons(blocks)
    assert (approve["action_id"], reject["action_id"]) == (APPROVE_ACTION_ID, REJECT_ACTION_ID)
    value = ButtonValue.decode(approve["value"])
    assert value == ButtonValue(workflow_id="ticket-0123456789", request_id="req00001", plan_hash=status.plan_hash)
    assert dashboard["url"] == f"{PUBLIC_URL}/tickets/0123456789" and "value" not in dashboard
    assert all(f"<@{approver}>" in texts(blocks) for approver in APPROVERS)


def test_a_partial_approval_shows_who_approved_and_how_many_more_are_needed() -> None:
    status = awaiting()
    assert status.approval is not None
    status.approval.required_approvals = 3
    before = texts(rendered(ticket_message(status, PUBLIC_URL).blocks))
    status.decisions.append(decision(status, APPROVERS[0], comment="checked <!channel>"))
    status.approved_by = [APPROVERS[0]]

    after = rendered(ticket_message(status, PUBLIC_URL).blocks)

    assert "No approvals yet; 3 more approvals needed" in before
    assert f"Approved so far by <@{APPROVERS[0]}>; 2 more approvals needed" in texts(after)
    assert "checked &lt;!channel&gt;" in texts(after) and len(buttons(after)) == 3  # still open for the others


def test_after_approval_the_buttons_are_gone_and_the_approver_is_named() -> None:
    status = awaiting()
    status.decisions.append(decision(status, APPROVERS[0]))
    status.approval, status.stage = None, Stage.EXECUTING

    executing = rendered(ticket_message(status, PUBLIC_URL).blocks)
    done = rendered(ticket_message(finished(status, OutcomeStatus.DONE, rows=3), PUBLIC_URL).blocks)

    for blocks in (executing, done):
        assert buttons(blocks) == [] and f"Approved by <@{APPROVERS[0]}>" in texts(blocks)
    assert "3 rows changed" in texts(done)


@pytest.mark.parametrize(
    ("outcome", "reason", "expected"),
    [
        (OutcomeStatus.FAILED, "execute_plan failed: deadlock", "Failed"),
        (OutcomeStatus.BLOCKED, "blocked by safety policy: no filter", "no filter"),
        (OutcomeStatus.EXPIRED, "no decision before the deadline", "Expired"),
    ],
)
def test_other_endings_show_the_reason_without_buttons(outcome: OutcomeStatus, reason: str, expected: str) -> None:
    blocks = rendered(ticket_message(finished(awaiting(), outcome, reason), PUBLIC_URL).blocks)
    assert expected in texts(blocks) and reason in texts(blocks) and buttons(blocks) == []


def test_a_rejection_names_who_and_why() -> None:
    status = awaiting()
    status.decisions.append(decision(status, APPROVERS[1], approve=False, comment="not during the freeze"))
    ended = finished(status, OutcomeStatus.REJECTED, f"rejected by {APPROVERS[1]}: not during the freeze")

    blocks = texts(rendered(ticket_message(ended, PUBLIC_URL).blocks))
    reply = outcome_reply(ended)

    assert f"rejected by <@{APPROVERS[1]}>: not during the freeze" in blocks
    assert reply.text.startswith(f"<@{REQUESTER}>") and "rejected" in reply.text


def test_untrusted_text_cannot_mention_or_link() -> None:
    hostile = "do it <!channel> <https://evil.example|click> & <@U0BOSS>"
    status = awaiting(planned(received(text=hostile), Plan(summary=hostile, operations=[], planner="llm")))

    blocks = texts(rendered(ticket_message(status, PUBLIC_URL).blocks))

    assert "<!channel>" not in blocks and "<https://evil" not in blocks and "<@U0BOSS>" not in blocks
    assert "&lt;!channel&gt;" in blocks


def test_huge_plans_stay_within_slacks_limits() -> None:
    long = "x" * 400
    operation = UpdateOperation(
        table="subscriptions",
        values=[Assignment(column=f"c{i}", value=long) for i in range(50)],
        filters=[Filter(column="id", op=FilterOperator.IN, value=[long] * 5) for _ in range(20)],
    )
    plan = Plan(summary="s" * 500, rationale="r" * 2000, operations=[operation] * MAX_OPERATIONS, planner="llm")
    status = awaiting(planned(received(text="t" * 2000), plan))
    status.report.findings *= 200  # type: ignore[union-attr]

    for message in (ticket_message(status, PUBLIC_URL), status_reply(status, PUBLIC_URL)):
        blocks = rendered(message.blocks)  # raises if the SDK finds a field over its limit
        assert len(blocks) <= MAX_BLOCKS
        assert all(len(block.get("text", {}).get("text", "")) <= SECTION_LIMIT for block in blocks)
        assert len(message.text) <= 3000
    assert len(buttons(rendered(ticket_message(status, PUBLIC_URL).blocks))) == 3


def test_a_padded_operation_cannot_hide_the_ones_after_it() -> None:
    """Red team 26: one section cut at 3000 characters inside operation 1 hid operation 5's role change."""
    padding = [Filter(column="email", op=FilterOperator.NE, value=f"{i:02d}" + "x" * 195) for i in range(19)]
    padded = UpdateOperation(
        table="users",
        values=[Assignment(column="active", value=True)],
        filters=[Filter(column="email", op=FilterOperator.LIKE, value="%@acme-corp.example"), *padding],
    )
    promote = UpdateOperation(
        table="users",
        values=[Assignment(column="role", value="admin")],
        filters=[Filter(column="id", op=FilterOperator.EQ, value=7)],
    )
    plan = Plan(summary="activate acme users", operations=[padded, padded, padded, padded, promote], planner="llm")
    status = awaiting(planned(received(text="activate acme users"), plan))

    shown = texts(rendered(ticket_message(status, PUBLIC_URL).blocks))

    assert "5. *update* `users`: set `role` = `'admin'` where `id` = `7`" in shown
    assert all(f"{number}. *update* `users`" in shown for number in range(1, 5))


def test_status_reply_is_the_message_without_buttons() -> None:
    blocks = rendered(status_reply(awaiting(), PUBLIC_URL).blocks)
    assert buttons(blocks) == [] and "Awaiting approval" in texts(blocks)


def test_reminder_and_escalation_mention_the_people_who_can_act() -> None:
    status = awaiting()
    reminder = reminder_message(status)
    escalation = texts(rendered(escalation_message(status, PUBLIC_URL).blocks))

    assert reminder.text.startswith(f"<@{REQUESTER}>") and f"<@{APPROVERS[0]}>" in reminder.text
    assert f"<@{APPROVERS[1]}>" in escalation and "<#C0TICKETS>" in escalation


def test_reject_modal_asks_for_a_reason_and_carries_the_request() -> None:
    status = awaiting()
    value = ButtonValue(workflow_id=status.workflow_id, request_id="req00001", plan_hash=status.plan_hash or "")

    view = reject_modal(status, RejectModalMetadata(value=value, channel="C0TICKETS")).to_dict()

    assert view["title"]["text"] == "Reject T-0123456789"
    assert RejectModalMetadata.model_validate_json(view["private_metadata"]).value == value
    reason, replan = view["blocks"][-2:]
    assert reason["element"]["max_length"] == 2000 and not reason.get("optional", False)
    assert replan["optional"] is True and replan["element"]["options"][0]["value"] == "replan"


def test_pending_lists_tickets_with_links_and_risk() -> None:
    row = TicketRow(ticket_id="aaaaaaaaaa", requester=REQUESTER, text="upgrade <acme>", risk="high")
    reply = pending_reply([row], PUBLIC_URL)
    body = texts(rendered(reply.blocks))
    assert f"<{PUBLIC_URL}/tickets/aaaaaaaaaa|T-aaaaaaaaaa>" in body and ":red_circle:" in body
    assert "&lt;acme&gt;" in body
    assert pending_reply([], PUBLIC_URL).text == "No tickets are waiting for approval."
