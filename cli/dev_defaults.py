"""A first-run `.env` for `agent-ticket dev`, so the embedded product can be tried end to end.

Risky tickets need approvers and the dashboard needs users. On the first `dev` in a checkout
with no `.env`, demo ones are written to `.env` (and said so), so the CLI in a second shell
sees the same approvers. An existing `.env` or environment is never changed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bot.dashboard.auth import hash_password

DEMO_APPROVERS = ("alice", "bob", "carol")
DEMO_USERS = (*DEMO_APPROVERS, "dave")
ENV_FILE = Path(".env")


def write_demo_env(path: Path = ENV_FILE) -> list[str]:
    """Write demo APPROVERS and DASHBOARD_USERS to `path` if it does not exist; return what to tell the user."""
    if path.exists() or os.environ.get("APPROVERS") or os.environ.get("DASHBOARD_USERS"):
        return []
    password = secrets.token_urlsafe(9)
    password_hash = hash_password(password)
    users = ",".join(f"{name}:{name}:{password_hash}" for name in DEMO_USERS)
    path.write_text(
        "# Written by the first `agent-ticket dev` for the demo; see .env.example for every setting.\n"
        f"# Dashboard: sign in as {', '.join(DEMO_USERS)} with the password {password}\n"
        f"APPROVERS={','.join(DEMO_APPROVERS)}\n"
        f"DASHBOARD_USERS={users}\n"
        "# Signs dashboard session cookies, so sign-ins survive a restart of `dev`.\n"
        f"DASHBOARD_SESSION_SECRET={secrets.token_urlsafe(48)}\n"
        "# Signs every decision, so the worker can tell who made it (docs/decisions.md).\n"
        f"DECISION_SIGNING_KEY={secrets.token_urlsafe(48)}\n"
    )
    path.chmod(0o600)
    return [
        f"Wrote {path} with demo settings: approvers {', '.join(DEMO_APPROVERS)}; dashboard users "
        f"{', '.join(DEMO_USERS)} with the password {password}. Edit {path} to use your own.",
    ]
