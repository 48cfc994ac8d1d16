"""Every bad CLI input gets a clear message, a non-zero exit and starts nothing."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.cli.conftest import CliEnv

AGENT_TICKET = str(Path(sys.executable).parent / "agent-ticket")


async def workflows_on_queue(env: WorkflowEnvironment, queue: str) -> list[str]:
    return [wf.id async for wf in env.client.list_workflows(f'TaskQueue="{queue}"')]


@pytest.fixture
def on_server(cli_env: CliEnv, local_env: WorkflowEnvironment) -> CliEnv:
    """The CLI pointed at the real dev server, so anything wrongly started would really start."""
    cli_env.set("TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)
    return cli_env


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ticket text is empty"),
        ("   \n ", "ticket text is empty"),
        ("x" * 2001, "longer than 2000 characters"),
        ("delete everything\x07", "control or unassigned character (U+0007)"),
        ("upgrade acme\u200b to pro", "invisible formatting character (U+200B)"),
    ],
    ids=["empty", "blank", "too-long", "control-char", "invisible-char"],
)
async def test_bad_ticket_text_starts_nothing(
    on_server: CliEnv, local_env: WorkflowEnvironment, text: str, message: str
) -> None:
    result = await on_server.run("submit", text, "--wait")
    assert result.exit_code == 2, result.output
    assert "TEXT: " in result.output and message in result.output
    assert "Traceback" not in result.output
    await asyncio.sleep(0.2)
    assert await workflows_on_queue(local_env, on_server.variables["TEMPORAL_TASK_QUEUE"]) == []
    assert not on_server.data_dir.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "upgrade acme-corp to pro", "--as", "  "], "--as must name a user"),
        (["submit", "upgrade acme-corp to pro", "--channel", "c" * 201], "--channel: String should have at most 200"),
        # Escaped in the audit, 34 of these once made the channel too long for its column (red team 14).
        (["submit", "show invoices", "--channel", "C0" + "\u200b" * 34], "the channel contains an invisible"),
        (["reject", "T-abc123"], "Missing option '--reason'"),
        (["reject", "T-abc123", "--reason", "  "], "--reason must say why"),
        (["approve", "T-abc123", "--as", "bob", "--comment", "x" * 2001], "--comment: String should have at most"),
        (["show", "../../etc/passwd"], "is not a ticket id"),
        (["approve", "T-a b"], "is not a ticket id"),
        (["list", "--status", "sleeping"], "--status must be one of"),
        (["worker", "--queue", "gpu"], "--queue must be one of workflows, llm, all"),
        (["submit", "--wait"], "Missing argument"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value)[:40],
)
async def test_bad_options_start_nothing(
    on_server: CliEnv, local_env: WorkflowEnvironment, args: list[str], message: str
) -> None:
    result = await on_server.run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert await workflows_on_queue(local_env, on_server.variables["TEMPORAL_TASK_QUEUE"]) == []
    assert not on_server.data_dir.exists()


@pytest.mark.parametrize("command", [["show"], ["approve", "--as", "bob"], ["reject", "--reason", "no", "--as", "bob"]])
async def test_unknown_ticket_is_reported(on_server: CliEnv, command: list[str]) -> None:
    result = await on_server.run(command[0], "T-0000000000", *command[1:])
    assert result.exit_code == 1, result.output
    assert "no ticket T-0000000000" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("variable", ["BOT_PORT", "APPROVAL_TIMEOUT_SECONDS", "TARGET_DATABASE_URL"])
async def test_bad_setting_is_named_and_starts_nothing(on_server: CliEnv, variable: str) -> None:
    on_server.set(variable, "abc")
    result = await on_server.run("submit", "upgrade acme-corp to the pro plan")
    assert result.exit_code == 2, result.output
    assert "invalid settings" in result.output and variable in result.output
    assert not on_server.data_dir.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "upgrade acme-corp to the pro plan", "--wait"],
        ["show", "T-abc123"],
        ["approve", "T-abc123", "--as", "bob"],
        ["worker"],
        ["bot"],
    ],
    ids=lambda args: args[0],
)
async def test_unreachable_temporal_names_the_address(cli_env: CliEnv, args: list[str]) -> None:
    result = await cli_env.run(*args)
    assert result.exit_code == 1, result.output
    address = cli_env.variables["TEMPORAL_ADDRESS"]
    assert f"No Temporal server answers at TEMPORAL_ADDRESS={address}" in result.output
    assert "Traceback" not in result.output
    assert not cli_env.data_dir.exists()


async def test_list_answers_from_the_app_database_while_temporal_is_down(cli_env: CliEnv) -> None:
    before = await cli_env.run("list")
    assert before.exit_code == 1, before.output
    assert "There is no app database at" in before.output and "`agent-ticket init-db`" in before.output
    assert "Traceback" not in before.output
    assert not cli_env.data_dir.exists()  # a wrong data dir is reported, not filled with an empty database
    assert (await cli_env.run("show", "T-0123456789", "--audit")).exit_code == 1
    assert not cli_env.data_dir.exists()
    assert (await cli_env.run("init-db")).exit_code == 0
    result = await cli_env.run("list")
    assert result.exit_code == 0, result.output
    assert "No tickets yet." in result.output


def test_console_script_exit_codes(cli_env: CliEnv) -> None:
    """The installed `agent-ticket` leaves with the command's code (it ends through `os._exit`)."""
    environ = {**os.environ, "BOT_PORT": "abc"}
    bad_setting = subprocess.Popen(
        [AGENT_TICKET, "dev"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    bad_text = subprocess.Popen([AGENT_TICKET, "submit", ""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = bad_setting.communicate(timeout=60)
    assert bad_setting.returncode == 2, (out, err)
    assert "BOT_PORT" in err and "Traceback" not in err
    out, err = bad_text.communicate(timeout=60)
    assert bad_text.returncode == 2, (out, err)
    assert "TEXT: ticket text is empty" in err
    assert not cli_env.data_dir.exists()


async def test_bot_port_in_use_is_named(on_server: CliEnv) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        on_server.set("BOT_PORT", str(port))
        result = await on_server.run("bot")
    assert result.exit_code == 1, result.output
    assert f"BOT_PORT={port}" in result.output and "in use" in result.output
    assert "Traceback" not in result.output


async def test_init_db_names_what_it_could_not_read(cli_env: CliEnv, tmp_path: Path) -> None:
    cli_env.set("POLICY_FILE", str(tmp_path / "missing-policy.yaml"))
    result = await cli_env.run("init-db")
    assert result.exit_code == 1, result.output
    assert "cannot read policy file" in result.output and "missing-policy.yaml" in result.output
    assert "Traceback" not in result.output


async def test_deciding_as_someone_else_is_refused_outside_a_machine_of_ones_own(cli_env: CliEnv) -> None:
    """Red team: with the signing key on a CLI host, `approve --as alice` then `--as bob` met a
    two-person rule alone. The CLI signs what it sends, so it refuses `--as` unless unsigned
    decisions are allowed anyway (ALLOW_UNSIGNED_DECISIONS, as under `agent-ticket dev`)."""
    cli_env.set("ALLOW_UNSIGNED_DECISIONS", "false")
    result = await cli_env.run("approve", "T-abc123", "--as", "alice")
    assert result.exit_code == 2 and "--as decides in someone else's name" in result.output


@pytest.mark.parametrize(
    ("command", "acts"),
    [
        (["submit", "upgrade acme-corp to the pro plan"], "files a ticket"),
        (["revert", "T-abc123"], "asks for a revert"),
    ],
)
async def test_requesting_as_someone_else_is_refused_outside_a_machine_of_ones_own(
    cli_env: CliEnv, command: list[str], acts: str
) -> None:
    """Red team: `revert T-x --as dave`, then approving it as oneself, met the two-person rule with
    one person, the requester being whoever was typed. The requester is the login, as for decisions."""
    cli_env.set("ALLOW_UNSIGNED_DECISIONS", "false")
    result = await cli_env.run(*command, "--as", "dave")
    assert result.exit_code == 2 and f"--as {acts} in someone else's name" in result.output
