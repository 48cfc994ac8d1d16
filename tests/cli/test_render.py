"""What the CLI prints, without a server: ticket views, the dev banner, addresses and password hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bot.dashboard.auth import password_matches
from cli.devserver import parse_address
from cli.main import app
from cli.render import status_view
from cli.running import llm_state, slack_state
from cli.ticket_list import tickets_table
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
    Stage,
    TicketRequest,
    TicketStatus,
    UpdateOperation,
)
from core.schema import TicketRow
from core.settings import load_settings
from tests.cli.conftest import CliEnv

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def rendered(renderable: object) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(renderable)
    return console.export_text()


def pending_status() -> TicketStatus:
    plan = Plan(
        summary="Make carol an admin",
        rationale="She runs billing now.",
        operations=[
            UpdateOperation(
                table="users",
                values=[{"column": "role", "value": "admin"}],
                filters=[Filter(column="id", op="eq", value=2)],
            )
        ],
        planner="offline",
    )
    return TicketStatus(
        ticket_id="abc123def0",
        workflow_id="ticket-abc123def0",
        request=TicketRequest(text="make carol@acme-corp.example an admin", requester="dave"),
        stage=Stage.AWAITING_APPROVAL,
        created_at=NOW,
        updated_at=NOW,
        plan=plan,
        plan_hash="527da46c8f529df2",
        report=SafetyReport(
            risk=Risk.HIGH,
            findings=[Finding(rule="sensitive_column", risk=Risk.HIGH, message="Writes role.", operation_index=0)],
            impacts=[
                OperationImpact(
                    operation_index=0,
                    kind="update",
                    table="users",
                    rows_affected=1,
                    preview=[RowChange(before={"id": 2, "role": "viewer"}, after={"id": 2, "role": "admin"})],
                )
            ],
            required_approvals=2,
            plan_hash="527da46c8f529df2",
        ),
        approval=ApprovalRequest(
            request_id="5b700825",
            plan_hash="527da46c8f529df2",
            approvers=["alice", "bob", "carol"],
            required_approvals=2,
            requested_at=NOW,
            deadline=NOW + timedelta(days=3),
        ),
        decisions=[
            DecisionRecord(
                decision=Decision(
                    approve=True,
                    decider="mallory",
                    source=DecisionSource.SLACK,
                    request_id="5b700825",
                    plan_hash="527da46c8f529df2",
                ),
                received_at=NOW,
                accepted=False,
                reason="not an approver",
            )
        ],
    )


def test_show_names_plan_findings_preview_decisions_and_next_step() -> None:
    text = rendered(status_view(pending_status()))
    for expected in (
        "T-abc123def0",
        "awaiting approval",
        "make carol@acme-corp.example an admin",
        "set role = 'admin'",
        "id = 2",
        "sensitive_column",
        "role = 'viewer'",
        "role = 'admin'",
        "ignored: not an approver",
        "Needs 2 approval(s) (0 so far) from: alice, bob, carol",
        "agent-ticket approve T-abc123def0 --as <approver>",
    ):
        assert expected in text, expected


def test_list_table_shows_status_and_risk() -> None:
    row = TicketRow(
        ticket_id="abc123def0",
        workflow_id="ticket-abc123def0",
        requester="dave",
        source="cli",
        text="make carol an admin",
        stage="awaiting_approval",
        status="awaiting_approval",
        risk="high",
        created_at=NOW,
    )
    text = rendered(tickets_table([row]))
    assert "T-abc123def0" in text and "awaiting_approval" in text and "high" in text


def test_banner_says_why_slack_is_off_and_which_planner_runs() -> None:
    settings = load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret=None, openai_api_key=None)
    assert slack_state(settings) == ("off — SLACK_SIGNING_SECRET is not set (updates go to the log)")
    assert "offline planner (OPENAI_API_KEY is not set)" in llm_state(settings)
    both = load_settings(_env_file=None, slack_bot_token=None, slack_signing_secret=None)
    assert "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set" in slack_state(both)
    on = load_settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s", slack_app_token="xapp-1")
    assert "Socket Mode" in slack_state(on)


@pytest.mark.parametrize(
    ("address", "host", "port"), [("localhost:7233", "localhost", 7233), ("[::1]:7400", "::1", 7400)]
)
def test_temporal_address_is_split(address: str, host: str, port: int) -> None:
    parsed = parse_address(address)
    assert (parsed.host, parsed.port) == (host, port)


@pytest.mark.parametrize("address", ["localhost", "localhost:http", ":7233", "localhost:70000"])
def test_bad_temporal_address_names_the_setting(address: str) -> None:
    with pytest.raises(ValueError, match="TEMPORAL_ADDRESS"):
        parse_address(address)


def test_hash_password_prints_an_entry_the_settings_accept(cli_env: CliEnv) -> None:
    result = CliRunner().invoke(
        app, ["hash-password", "--stdin", "--user", "alice", "--approver", "U123"], input="s3cret\n"
    )
    assert result.exit_code == 0, result.output
    entry = result.output.strip().removeprefix("DASHBOARD_USERS='").removesuffix("'")
    settings = load_settings(_env_file=None, dashboard_users=entry)
    account = settings.dashboard_users[0]
    assert (account.username, account.approver) == ("alice", "U123")
    assert password_matches(account.password_hash.get_secret_value(), "s3cret")
    assert "s3cret" not in result.output

    empty = CliRunner().invoke(app, ["hash-password", "--stdin"], input="\n")
    assert empty.exit_code == 2 and "the password is empty" in empty.output


def test_untrusted_text_is_shown_as_typed_not_as_markup() -> None:
    status = pending_status()
    status.request = TicketRequest(text="grant [bold]everything[/] to [red]me", requester="[link=x]eve")
    assert status.plan is not None
    status.plan.summary = "[/]unbalanced"
    text = rendered(status_view(status))
    assert "grant [bold]everything[/] to [red]me" in text
    assert "[link=x]eve" in text and "[/]unbalanced" in text
