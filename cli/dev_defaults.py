"""A first-run `.env` for `agent-ticket dev`, so the embedded product can be tried end to end.

Risky tickets need approvers and the dashboard needs users. On the first `dev` in a checkout
with no `.env`, demo ones are written to `.env` (and said so), so the CLI in a second shell
sees the same approvers. Where the server, ports and data are (set in the environment of
`dev`, e.g. `BOT_PORT=3001 make dev`) is written there too, so that second shell reaches the
same ones; when there is a `.env` already, the exact lines to run in the other shell are
printed instead. An existing `.env` or environment is never changed.
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from bot.dashboard.auth import hash_password

DEMO_APPROVERS = ("alice", "bob", "carol")
DEMO_USERS = (*DEMO_APPROVERS, "dave")
ENV_FILE = Path(".env")
# What a CLI in another shell needs to reach the same Temporal server, bot and databases as `dev`.
SHARED_VARIABLES = (
    "AGENT_TICKET_DATA_DIR",
    "APP_DATABASE_URL",
    "TARGET_DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_TASK_QUEUE",
    "TEMPORAL_UI_PORT",
    "BOT_HOST",
    "BOT_PORT",
    "PUBLIC_URL",
)


def env_line(name: str, value: str) -> str:
    """`NAME='value'`: single quotes keep `$`, `,` and `:` literal for python-dotenv and shells alike."""
    return f"{name}={shlex.quote(value)}" if value else f"{name}="


def shared_settings(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in SHARED_VARIABLES if environ.get(name)}


def write_demo_env(path: Path = ENV_FILE, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Write demo settings to `path` if it does not exist; return what to tell the user."""
    shared = shared_settings(environ)
    if path.exists() or environ.get("APPROVERS") or environ.get("DASHBOARD_USERS"):
        return second_shell_note(path, shared)
    password = secrets.token_urlsafe(9)
    password_hash = hash_password(password)
    users = ",".join(f"{name}:{name}:{password_hash}" for name in DEMO_USERS)
    lines = [
        "# Written by the first `agent-ticket dev` for the demo; see .env.example for every setting.",
        f"# Dashboard: sign in as {', '.join(DEMO_USERS)} with the password {password}",
        env_line("APPROVERS", ",".join(DEMO_APPROVERS)),
        env_line("DASHBOARD_USERS", users),
        "# Signs dashboard session cookies, so sign-ins survive a restart of `dev`.",
        env_line("DASHBOARD_SESSION_SECRET", secrets.token_urlsafe(48)),
        "# A machine of your own: raw `temporal workflow signal` decisions and `approve --as NAME` count too.",
        env_line("ALLOW_UNSIGNED_DECISIONS", "true"),
        "# Signs every decision, so the worker can tell who made it (docs/decisions.md).",
        env_line("DECISION_SIGNING_KEY", secrets.token_urlsafe(48)),
    ]
    if shared:
        lines.append(
            "# From the environment of that `dev`, so a CLI in another shell reaches the same server and data."
        )
        lines.extend(env_line(name, value) for name, value in shared.items())
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    written = f"; and {', '.join(shared)} from your environment" if shared else ""
    return [
        f"Wrote {path} with demo settings: approvers {', '.join(DEMO_APPROVERS)}; dashboard users "
        f"{', '.join(DEMO_USERS)} with the password {password}{written}. Edit {path} to use your own.",
    ]


def second_shell_note(path: Path, shared: Mapping[str, str]) -> list[str]:
    """The `export` line another shell needs for what this environment sets and `.env` does not say."""
    in_file = dotenv_values(path) if path.exists() else {}
    missing = {name: value for name, value in shared.items() if in_file.get(name) != value}
    if not missing:
        return []
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in missing.items())
    return [
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} set in this shell but not in {path}; "
        f"before using agent-ticket in another shell, run there:\n  export {exports}"
    ]
