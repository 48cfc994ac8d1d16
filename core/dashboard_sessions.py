"""Server-side records of dashboard sessions: made at sign-in, checked on every request, revocable.

The session cookie carries a random id; the app DB keeps its SHA-256 with the user and the
expiry. Sign-out, a changed password (noticed on the next request) and an administrator's
`agent-ticket sessions revoke USER` mark rows revoked, which ends every copy of those cookies
at once, on every bot replica that shares the app DB.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.schema import DashboardSessionRow


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every one this table stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LiveSession:
    username: str
    created_at: datetime
    expires_at: datetime


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, username: str, lifetime_seconds: float, *, now: datetime | None = None) -> str:
        """A new session for `username`; returns its id (for the cookie, never stored as such)."""
        now = now or datetime.now(UTC)
        session_id = secrets.token_urlsafe(32)
        async with self._sessions.begin() as db:
            await db.execute(delete(DashboardSessionRow).where(DashboardSessionRow.expires_at < now))
            db.add(
                DashboardSessionRow(
                    id_hash=_digest(session_id),
                    username=username,
                    created_at=now,
                    expires_at=now + timedelta(seconds=lifetime_seconds),
                )
            )
        return session_id

    async def live(self, session_id: str, *, now: datetime | None = None) -> LiveSession | None:
        """The session if it exists, has not expired and was not revoked; else None."""
        now = now or datetime.now(UTC)
        async with self._sessions() as db:
            row = await db.get(DashboardSessionRow, _digest(session_id))
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            return None
        return LiveSession(row.username, _aware(row.created_at), _aware(row.expires_at))

    async def revoke(self, session_id: str, reason: str = "signed out") -> None:
        async with self._sessions.begin() as db:
            await db.execute(
                update(DashboardSessionRow)
                .where(DashboardSessionRow.id_hash == _digest(session_id), DashboardSessionRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
            )

    async def revoke_user(self, username: str, reason: str = "revoked") -> int:
        """End every live session of `username`; returns how many there were."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as db:
            live = (
                await db.execute(
                    select(DashboardSessionRow.id_hash).where(
                        DashboardSessionRow.username == username,
                        DashboardSessionRow.revoked_at.is_(None),
                        DashboardSessionRow.expires_at > now,
                    )
                )
            ).scalars()
            ids = list(live)
            if ids:
                await db.execute(
                    update(DashboardSessionRow)
                    .where(DashboardSessionRow.id_hash.in_(ids))
                    .values(revoked_at=now, revoked_reason=reason)
                )
        return len(ids)
