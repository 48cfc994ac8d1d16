"""Who the CLI acts as comes from the operating system, not from what the environment claims."""

from __future__ import annotations

import os
import pwd

import pytest

from cli.identity import current_user


def test_the_login_is_the_real_users_whatever_user_and_logname_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """`USER=alice agent-ticket approve …` signed a decision as alice (red team 19)."""
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("LNAME", "alice")
    monkeypatch.setenv("USERNAME", "alice")
    assert current_user() == pwd.getpwuid(os.getuid()).pw_name != "alice"
