"""Running `agent-ticket` in-process against an isolated environment: its own data dir and task queue.

Commands call `asyncio.run`, so they run in a thread of their own; async tests await them with
`asyncio.to_thread`, which keeps the test's event loop (and any worker on it) running meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from core.settings import Settings, load_settings
from tests.support import TEST_SIGNING_KEY, free_port

CLEARED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "APP_DATABASE_URL",
    "TARGET_DATABASE_URL",
    "TEMPORAL_UI_URL",
)


@dataclass
class CliEnv:
    """The environment variables a command sees, and a way to run commands with them."""

    data_dir: Path
    monkeypatch: pytest.MonkeyPatch
    variables: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: str) -> None:
        self.variables[name] = value
        self.monkeypatch.setenv(name, value)

    def invoke(self, *args: str) -> Result:
        """Run one command to completion in a thread of its own (it calls `asyncio.run`)."""
        outcome: list[Result] = []
        runner = CliRunner()
        thread = threading.Thread(target=lambda: outcome.append(runner.invoke(app, list(args))))
        thread.start()
        thread.join(timeout=120)
        assert outcome, f"`agent-ticket {' '.join(args)}` did not finish"
        return outcome[0]

    async def run(self, *args: str) -> Result:
        """`invoke` from an async test, leaving its event loop free to run workers meanwhile."""
        return await asyncio.to_thread(self.invoke, *args)

    def settings(self) -> Settings:
        return load_settings(_env_file=None)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliEnv]:
    """A fresh data dir, its own task queue, approvers alice/bob/carol, a signing key; no LLM, Slack or `.env`."""
    monkeypatch.chdir(tmp_path)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    env = CliEnv(data_dir=tmp_path / "data", monkeypatch=monkeypatch)
    env.set("AGENT_TICKET_DATA_DIR", str(env.data_dir))
    env.set("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")  # nothing listens there
    env.set("TEMPORAL_TASK_QUEUE", f"cli-{uuid.uuid4().hex[:10]}")
    env.set("APPROVERS", "alice,bob,carol")
    env.set("DECISION_SIGNING_KEY", TEST_SIGNING_KEY)  # the CLI signs, the test's workers verify
    env.set("ALLOW_UNSIGNED_DECISIONS", "true")  # as on a machine of one's own: `--as` picks the approver
    yield env
