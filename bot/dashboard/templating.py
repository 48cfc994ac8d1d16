"""Rendering dashboard pages: one Jinja2 environment, autoescaped, with the filters the templates use.

Every page gets the signed-in user, the session's CSRF token and any flash message, and is sent
with `Cache-Control: no-store`, since it shows data only a signed-in person may see.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.dashboard.auth import DashboardUser, UserDirectory
from bot.dashboard.csrf import CSRF_FIELD, csrf_token
from bot.dashboard.presenters import words
from bot.dashboard.sessions import pop_flash
from core.names import ticket_label

BOT_DIR = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = BOT_DIR / "templates"
STATIC_DIR = BOT_DIR / "static"
NO_STORE = {"Cache-Control": "no-store"}


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the app writes is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 d ago`: the age column of the ticket list."""
    if moment is None:
        return ""
    seconds = max(((now or datetime.now(UTC)) - aware(moment)).total_seconds(), 0)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{round(seconds / 60)} min ago"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def static_version() -> str:
    """Changes with the static files' content, so browsers never use a stale stylesheet or script."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Templates:
    def __init__(self, directory: UserDirectory, temporal_ui_url: str, namespace: str) -> None:
        self._directory = directory
        self._temporal_ui_url = temporal_ui_url.rstrip("/")
        self._namespace = namespace
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(when=when, ago=ago, words=words, label=ticket_label, who=directory.display_name)
        self._env.globals.update(csrf_field=CSRF_FIELD, static_version=static_version(), workflow_url=self.workflow_url)

    def workflow_url(self, workflow_id: str) -> str:
        """The workflow's page in the Temporal Web UI."""
        return (
            f"{self._temporal_ui_url}/namespaces/{quote(self._namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}"
        )

    def render_text(self, name: str, values: dict[str, Any]) -> str:
        return self._env.get_template(name).render(values)

    def page(
        self,
        request: Request,
        name: str,
        values: dict[str, Any] | None = None,
        *,
        user: DashboardUser | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        show_flash: bool = True,
    ) -> HTMLResponse:
        context = {
            "request": request,
            "user": user,
            "csrf_token": csrf_token(request),
            "flash": pop_flash(request) if show_flash else None,
            "now": datetime.now(UTC),
            **(values or {}),
        }
        return HTMLResponse(
            self.render_text(name, context), status_code=status_code, headers={**NO_STORE, **(headers or {})}
        )
