"""Who an MCP caller is: a bearer token of the form `<agent name>.<secret>`, checked against `MCP_AGENTS`.

The name in the token picks the one argon2 hash to verify, so an unknown or wrong token costs
one verification, never one per agent. Unknown names are verified against a real hash too (the
result is thrown away) so a miss takes as long as a wrong secret. A token that verified once is
remembered by its SHA-256 digest, so an agent's later requests cost no argon2 work. Checks run
behind a `PasswordCheckGate`, like the dashboard's sign-ins, so at most a few hold argon2's
memory at once and the rest are turned away with `PasswordCheckBusy`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread
from pydantic import SecretStr

from bot.dashboard.auth import hash_password, password_matches
from bot.dashboard.password_gate import PasswordCheckGate
from core.agents import AGENT_NAME_PATTERN, McpAgent, agent_requester

Verify = Callable[[str, str], bool]  # (argon2 hash, token) -> whether they match

TOKEN_SEPARATOR = "."


@dataclass(frozen=True)
class Agent:
    """An authenticated agent: its configured name and the requester identity its tickets carry."""

    name: str

    @property
    def requester(self) -> str:
        return agent_requester(self.name)


@dataclass(frozen=True)
class NewToken:
    token: str
    entry: str  # the `MCP_AGENTS` entry: name and the token's argon2 hash


def new_token(name: str) -> NewToken:
    """A fresh bearer token for `name` and the `MCP_AGENTS` entry that admits it; only the hash is kept."""
    if not re.match(AGENT_NAME_PATTERN, name):
        raise ValueError("an agent name is 1-63 letters, digits, '-' or '_', starting with a letter or digit")
    token = f"{name}{TOKEN_SEPARATOR}{secrets.token_urlsafe(32)}"
    agent = McpAgent(name=name, token_hash=SecretStr(hash_password(token)))  # within the cost MCP_AGENTS accepts
    return NewToken(token=token, entry=f"{name}:{agent.token_hash.get_secret_value()}")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AgentDirectory:
    """The agents from settings; `authenticate` turns a bearer token into an `Agent` or None."""

    def __init__(
        self, agents: list[McpAgent], gate: PasswordCheckGate | None = None, verify: Verify = password_matches
    ) -> None:
        self._gate = gate or PasswordCheckGate()
        self._verify = verify
        self._hashes = {agent.name: agent.token_hash.get_secret_value() for agent in agents}
        self._decoy = next(iter(self._hashes.values()), None)
        self._verified: dict[str, bytes] = {}

    @property
    def empty(self) -> bool:
        return not self._hashes

    def remembered(self, token: str) -> Agent | None:
        """The agent when this exact token verified before; no argon2 work either way."""
        name = token.rpartition(TOKEN_SEPARATOR)[0]
        known = self._verified.get(name)
        return Agent(name) if known is not None and hmac.compare_digest(known, _digest(token)) else None

    async def authenticate(self, token: str) -> Agent | None:
        """The agent the token proves, else None; `PasswordCheckBusy` when no check slot came free in time."""
        name, separator, secret = token.rpartition(TOKEN_SEPARATOR)
        if not separator or not name or not secret or len(token) > 512:
            return None
        if (agent := self.remembered(token)) is not None:
            return agent
        stored = self._hashes.get(name)
        target = stored or self._decoy
        if target is None:
            return None
        async with self._gate.slot():
            matches = await anyio.to_thread.run_sync(self._verify, target, token)
        if stored is None or not matches:
            return None
        self._verified[name] = _digest(token)
        return Agent(name)
