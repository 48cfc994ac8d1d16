"""The dashboard's pure parts: presenting plans and previews, origin checks, throttling, account settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from starlette.requests import Request

from bot.dashboard.auth import UserDirectory, hash_password, password_matches
from bot.dashboard.csrf import same_origin
from bot.dashboard.password_gate import PasswordCheckBusy, PasswordCheckGate
from bot.dashboard.presenters import finding_rows, operation_rows, previews, stage_steps
from bot.dashboard.responses import safe_next
from bot.dashboard.throttle import Limit, LoginThrottle
from bot.dashboard.ticket_view import approvals_so_far
from core.models import (
    ApprovalRequest,
    Decision,
    DecisionRecord,
    DecisionSource,
    Filter,
    Finding,
    OperationImpact,
    Plan,
    Risk,
    RowChange,
    SafetyReport,
    SelectOperation,
    Stage,
    TicketRequest,
    TicketStatus,
    UpdateOperation,
    plan_hash,
)
from core.settings import ConfigError, load_settings
from rendering.words import filter_text

# A plan and its report as the dashboard renders them.
PLAN = Plan(
    summary="Move acme-corp and globex to the pro plan",
    rationale="Both customers asked to upgrade; the pro plan has id 3. The plan list is read first to confirm it.",
    operations=[
        SelectOperation(
            table="plans",
            columns=["id", "name", "price_cents"],
            filters=[Filter(column="name", op="eq", value="pro")],
            limit=1,
        ),
        UpdateOperation(
            table="subscriptions",
            values=[{"column": "plan_id", "value": 3}, {"column": "seats", "value": 50}],
            filters=[Filter(column="customer_id", op="in", value=[1, 2])],
        ),
    ],
    planner="scripted (tests)",
)
# What the safety check says of it: medium risk, one approval, two rows of subscriptions change.
REPORT = SafetyReport(
    risk=Risk.MEDIUM,
    required_approvals=1,
    plan_hash=plan_hash(PLAN),
    findings=[
        Finding(rule="read_only", risk=Risk.LOW, message="Reads plans; changes nothing.", operation_index=0),
        Finding(
            rule="row_count",
            risk=Risk.MEDIUM,
            message="Changes 2 rows of subscriptions; up to 1 row runs without approval.",
            operation_index=1,
        ),
    ],
    impacts=[
        OperationImpact(operation_index=0, kind="select", table="plans", rows_affected=1),
        OperationImpact(
            operation_index=1,
            kind="update",
            table="subscriptions",
            rows_affected=2,
            preview=[
                RowChange(
                    before={"id": 1, "customer_id": 1, "plan_id": 2, "seats": 10, "status": "active"},
                    after={"id": 1, "customer_id": 1, "plan_id": 3, "seats": 50, "status": "active"},
                ),
                RowChange(
                    before={"id": 2, "customer_id": 2, "plan_id": 1, "seats": 3, "status": "trialing"},
                    after={"id": 2, "customer_id": 2, "plan_id": 3, "seats": 50, "status": "trialing"},
                ),
            ],
        ),
    ],
)


def _request(headers: dict[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/x", "headers": raw, "query_string": b""})


def test_operations_read_as_what_they_do() -> None:
    rows = operation_rows(PLAN, REPORT)
    assert [(row.number, row.kind, row.table, row.rows_affected, row.risk) for row in rows] == [
        (1, "select", "plans", 1, "low"),
        (2, "update", "subscriptions", 2, "medium"),
    ]
    assert rows[0].changes == ["id, name, price_cents", "at most 1 row"] and rows[0].conditions == ["name = 'pro'"]
    assert rows[1].changes == ["plan_id = 3", "seats = 50"] and rows[1].conditions == ["customer_id in (1, 2)"]
    assert filter_text(Filter(column="deleted_at", op="is_null")) == "deleted_at is null"


def test_findings_most_serious_first() -> None:
    rows = finding_rows(REPORT)
    assert [(row.risk, row.where) for row in rows] == [("medium", "operation 2"), ("low", "operation 1")]


def test_preview_puts_id_then_changed_columns_first() -> None:
    (preview,) = previews(REPORT)
    assert preview.columns == ["id", "plan_id", "seats", "customer_id", "status"]
    first = preview.rows[0]
    assert (first[1].before, first[1].after, first[1].changed) == ("2", "3", True)
    assert first[3].changed is False and preview.hidden_rows == 0


def test_stage_steps_mark_done_current_and_todo() -> None:
    states = [step.state for step in stage_steps(Stage.AWAITING_APPROVAL)]
    assert states == ["done", "done", "done", "done", "current", "todo", "todo"]
    assert {step.state for step in stage_steps(Stage.FINISHED)} == {"done"}


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        # Only PUBLIC_URL's origin counts: the Host header is the sender's to choose (issue 14).
        ({"host": "dash.test", "origin": "http://dash.test"}, False),
        ({"host": "evil.test", "origin": "http://evil.test"}, False),
        ({"host": "internal:3000", "origin": "https://tickets.example.com"}, True),  # PUBLIC_URL behind a proxy
        ({"host": "dash.test", "referer": "https://tickets.example.com/tickets/1"}, True),
        ({"host": "dash.test", "origin": "http://tickets.example.com"}, False),  # the scheme counts too
        ({"host": "dash.test", "origin": "https://tickets.example.com.evil.test"}, False),
        ({"host": "dash.test", "origin": "null"}, False),
        ({"host": "dash.test"}, False),
        ({"host": "x", "origin": "https://tickets.example.com", "sec-fetch-site": "cross-site"}, False),
        ({"host": "x", "origin": "https://tickets.example.com", "sec-fetch-site": "same-origin"}, True),
    ],
)
def test_same_origin(headers: dict[str, str], allowed: bool) -> None:
    assert same_origin(_request(headers), "https://tickets.example.com") is allowed


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/tickets/a?x=1", "/tickets/a?x=1"),
        ("//evil.test", "/"),
        ("https://evil.test", "/"),
        ("/\\evil", "/"),
        ("", "/"),
    ],
)
def test_safe_next(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_throttle_pauses_after_five_failures_then_forgets() -> None:
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(5):
        assert throttle.admit("ip", "bob").allowed
    refused = throttle.admit("ip", "bob")
    assert not refused.allowed and refused.retry_after == 301
    assert throttle.admit("ip", "alice").allowed
    now[0] += 301
    assert throttle.admit("ip", "bob").allowed


async def test_passwords_are_argon2_and_unknown_users_fail_alike() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and password_matches(hashed, "correct horse")
    assert not password_matches(hashed, "wrong") and not password_matches("not a hash", "x")
    directory = UserDirectory(list(load_settings(_env_file=None, dashboard_users=f"ann:U1:{hashed}").dashboard_users))
    assert (await directory.authenticate("ann", "correct horse")) is not None
    assert (await directory.authenticate("ann", "wrong")) is None
    assert (await directory.authenticate("nobody", "correct horse")) is None
    assert directory.display_name("U1") == "ann (U1)" and directory.display_name("U9") == "U9"


def test_dashboard_users_setting_refuses_plain_passwords_and_duplicates() -> None:
    hashed = hash_password("pw")
    accounts = load_settings(
        _env_file=None, dashboard_users=f"ann:U1:{hashed},bob:U2:{hashed}\ncarol:U3:"
    ).dashboard_users
    assert [(a.username, a.approver, bool(a.password_hash.get_secret_value())) for a in accounts] == [
        ("ann", "U1", True),
        ("bob", "U2", True),
        ("carol", "U3", False),
    ]
    with pytest.raises(ConfigError, match=r"DASHBOARD_USERS: .*argon2 hash"):
        load_settings(_env_file=None, dashboard_users="ann:U1:hunter2")
    with pytest.raises(ConfigError, match="listed twice"):
        load_settings(_env_file=None, dashboard_users=f"ann:U1:{hashed},ann:U2:{hashed}")
    with pytest.raises(ConfigError, match=r"DASHBOARD_SESSION_SECRET: .*32 characters"):
        load_settings(_env_file=None, dashboard_session_secret="short")


def test_approvals_so_far_count_only_the_pending_request() -> None:
    now = datetime.now(UTC)
    approval = ApprovalRequest(
        request_id="r2", plan_hash="h", approvers=["alice", "bob"], required_approvals=2, requested_at=now, deadline=now
    )

    def record(decider: str, request_id: str, accepted: bool = True) -> DecisionRecord:
        decision = Decision(
            approve=True, decider=decider, source=DecisionSource.DASHBOARD, request_id=request_id, plan_hash="h"
        )
        return DecisionRecord(decision=decision, received_at=now, accepted=accepted)

    status = TicketStatus(
        ticket_id="t1",
        workflow_id="ticket-t1",
        request=TicketRequest(text="x", requester="dave"),
        stage=Stage.AWAITING_APPROVAL,
        created_at=now,
        updated_at=now,
        approval=approval,
        decisions=[record("alice", "r1"), record("mallory", "r2", accepted=False), record("bob", "r2")],
        approved_by=["bob"],  # the workflow's own count for the pending request
    )
    assert approvals_so_far(status) == 1


def test_throttle_counts_per_client_per_name_and_in_all() -> None:
    throttle = LoginThrottle(limits={"client": Limit(3), "account": Limit(2), "global": Limit(4)}, clock=lambda: 0.0)
    assert [throttle.admit("a", f"u{n}").allowed for n in range(4)] == [True, True, True, False]  # client
    assert [throttle.admit(f"b{n}", "bob").allowed for n in range(2)] == [True, False]  # global: 4 admitted
    fresh = LoginThrottle(limits={"account": Limit(2)}, clock=lambda: 0.0)
    assert [fresh.admit(f"c{n}", "bob").allowed for n in range(3)] == [True, True, False]


def test_a_right_password_takes_its_attempt_back() -> None:
    throttle = LoginThrottle(clock=lambda: 0.0)
    for _ in range(4):
        throttle.admit("ip", "bob")
    throttle.succeeded(throttle.admit("ip", "bob"))
    assert all(throttle.admit("ip", "bob").allowed for _ in range(5))


async def test_password_gate_runs_few_checks_and_turns_the_rest_away() -> None:
    gate = PasswordCheckGate(slots=2, max_waiting=1, wait_seconds=0.2)
    release = asyncio.Event()
    running = 0
    peak = 0

    async def check() -> str:
        nonlocal running, peak
        try:
            async with gate.slot():
                running += 1
                peak = max(peak, running)
                await release.wait()
                running -= 1
                return "checked"
        except PasswordCheckBusy:
            return "busy"

    tasks = [asyncio.create_task(check()) for _ in range(6)]
    finished = asyncio.as_completed(tasks, timeout=5)  # three are turned away at once, the one waiter after 0.2 s
    assert [await next(finished) for _ in range(4)] == ["busy"] * 4
    release.set()
    results = await asyncio.gather(*tasks)
    assert peak == 2 and results.count("checked") == 2 and results.count("busy") == 4


def test_argon2_costs_are_bounded_for_new_and_stored_hashes() -> None:
    made = hash_password("pw")
    assert "$m=19456,t=2,p=1$" in made
    assert load_settings(_env_file=None, dashboard_users=f"ann:U1:{made}").dashboard_users
    old_default = PasswordHasher(memory_cost=64 * 1024, time_cost=3, parallelism=4).hash("pw")
    assert load_settings(_env_file=None, dashboard_users=f"ann:U1:{old_default}").dashboard_users
    dear = PasswordHasher(memory_cost=128 * 1024, time_cost=1, parallelism=1).hash("pw")
    with pytest.raises(ConfigError, match="at most m=65536"):
        load_settings(_env_file=None, dashboard_users=f"ann:U1:{dear}")


def test_comments_are_screened_like_ticket_text() -> None:
    base = {"approve": False, "decider": "bob", "source": DecisionSource.SLACK, "request_id": "r", "plan_hash": "h"}
    assert Decision(**base, comment="wrong table\n\tsee the audit").comment == "wrong table\n\tsee the audit"
    for hidden in ("\u202e", "\u2066", "\u200b", "\x1b"):
        with pytest.raises(ValidationError, match=f"U\\+{ord(hidden):04X}"):
            Decision(**base, comment=f"fine{hidden}")
