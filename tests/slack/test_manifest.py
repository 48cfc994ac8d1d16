"""The Slack app manifest matches the code: command, request URLs, and exactly the scopes used."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from bot.slack.app import EVENTS_PATH
from core.settings import PROJECT_ROOT
from rendering.slack_ids import COMMAND

MANIFEST = PROJECT_ROOT / "manifests" / "slack-app.yaml"
SLACK_MODULES = [
    PROJECT_ROOT / "activities" / "slack_notify.py",
    PROJECT_ROOT / "bot" / "slack" / "front_door.py",
]
# The bot scopes each Web API method we call needs (auth.test and views.open need none); reading a
# conversation needs one scope for public and one for private channels.
HISTORY = ("channels:history", "groups:history")
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat_postMessage": ("chat:write",),
    "chat_update": ("chat:write",),
    "chat_postEphemeral": ("chat:write",),
    "conversations_history": HISTORY,
    "conversations_replies": HISTORY,
    "usergroups_users_list": ("usergroups:read",),
    "views_open": (),
}


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def web_api_methods(path: Path) -> set[str]:
    return set(re.findall(r"self\._web\.(\w+)\(", path.read_text()))


def test_the_slash_command_and_interactivity_reach_slack_events() -> None:
    app = manifest()
    [command] = app["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert urlparse(command["url"]).path == EVENTS_PATH
    assert app["settings"]["interactivity"]["is_enabled"] is True
    assert urlparse(app["settings"]["interactivity"]["request_url"]).path == EVENTS_PATH
    assert "socket_mode_enabled" in app["settings"]


def test_bot_scopes_are_exactly_the_ones_the_code_uses() -> None:
    used = set().union(*(web_api_methods(path) for path in SLACK_MODULES))
    assert used <= METHOD_SCOPES.keys(), f"add the scope of {used - METHOD_SCOPES.keys()} to METHOD_SCOPES"
    needed = {scope for method in used for scope in METHOD_SCOPES[method]} | {"commands"}
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed
