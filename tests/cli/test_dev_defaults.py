"""The first `dev` in a fresh checkout writes demo approvers and dashboard users to `.env`, once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.dashboard.auth import password_matches
from cli.dev_defaults import DEMO_APPROVERS, DEMO_USERS, write_demo_env
from core.settings import load_settings


def test_writes_a_usable_env_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPROVERS", raising=False)
    monkeypatch.delenv("DASHBOARD_USERS", raising=False)
    env_file = tmp_path / ".env"

    notes = write_demo_env(env_file)

    password = re.search(r"the password (\S+)\.", notes[0])
    assert password is not None
    settings = load_settings(_env_file=env_file)
    assert settings.approvers == list(DEMO_APPROVERS)
    assert [account.username for account in settings.dashboard_users] == list(DEMO_USERS)
    assert all(
        password_matches(account.password_hash.get_secret_value(), password.group(1))
        for account in settings.dashboard_users
    )
    assert settings.dashboard_session_secret is not None  # sign-ins survive a restart of dev
    assert env_file.stat().st_mode & 0o077 == 0  # the file names a password: owner only

    before = env_file.read_text()
    assert write_demo_env(env_file) == []
    assert env_file.read_text() == before


def test_leaves_configured_approvers_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVERS", "U123")
    assert write_demo_env(tmp_path / ".env") == []
    assert not (tmp_path / ".env").exists()


def test_where_dev_runs_is_written_for_the_second_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`BOT_PORT=3001 AGENT_TICKET_DATA_DIR=… make dev`: a CLI in another shell reads the same from `.env`."""
    env_file = tmp_path / ".env"
    environ = {
        "BOT_PORT": "3001",
        "AGENT_TICKET_DATA_DIR": str(tmp_path / "my data"),
        "TEMPORAL_ADDRESS": "localhost:7300",
    }

    notes = write_demo_env(env_file, environ)

    assert "BOT_PORT" in notes[0] and "AGENT_TICKET_DATA_DIR" in notes[0]
    settings = load_settings(_env_file=env_file)
    assert settings.bot_port == 3001 and settings.data_dir == tmp_path / "my data"
    assert settings.temporal_address == "localhost:7300"
    assert re.search(r"^DASHBOARD_USERS='[^']+'$", env_file.read_text(), re.MULTILINE)  # quoted, as .env.example says


def test_an_existing_env_file_gets_the_lines_to_run_instead(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APPROVERS=alice,bob\nBOT_PORT=3001\n")

    notes = write_demo_env(env_file, {"BOT_PORT": "3001", "TEMPORAL_UI_PORT": "8300"})

    assert env_file.read_text() == "APPROVERS=alice,bob\nBOT_PORT=3001\n"  # never changed
    [note] = notes
    assert note.endswith("export TEMPORAL_UI_PORT=8300") and "BOT_PORT" not in note
    assert write_demo_env(env_file, {"BOT_PORT": "3001"}) == []
