"""AI agents as configured in `MCP_AGENTS`: who may file tickets through the MCP door.

An agent is a name and the argon2 hash of its bearer token, no costlier to check than a
dashboard password's (`core.accounts.MAX_ARGON2_*`), since every bearer token, even a wrong
one, pays it. It files tickets as the requester `agent:<name>`, a namespace no person's
identity uses, so an agent is never an approver: the settings refuse an `APPROVERS` entry in
that namespace or an agent named like an approver.
Kept in core so a bad entry is refused when the settings load, naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from core.accounts import ARGON2_HASH, argon2_cost_problem, parse_hash_list

AGENT_PREFIX = "agent:"
AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
# Entries are split at a comma (or newline) that starts `name:$argon2`; the commas inside the
# hash's parameters (`m=65536,t=3,p=4`) are not followed by that.
_ENTRY_SEPARATOR = re.compile(r"[,\n]\s*(?=[A-Za-z0-9][A-Za-z0-9_-]*:\$argon2)")


class McpAgent(BaseModel):
    """One agent: the name it files tickets under and the argon2 hash of its bearer token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=AGENT_NAME_PATTERN)
    token_hash: SecretStr

    @field_validator("token_hash")
    @classmethod
    def _argon2_only(cls, value: SecretStr) -> SecretStr:
        match = ARGON2_HASH.match(value.get_secret_value())
        if match is None:
            raise ValueError(
                "the token must be an argon2 hash (make one with `agent-ticket mcp token NAME`), never the token itself"
            )
        if (too_dear := argon2_cost_problem(match)) is not None:
            raise ValueError(f"{too_dear} (make a new token with `agent-ticket mcp token NAME`)")
        return value

    @property
    def requester(self) -> str:
        return agent_requester(self.name)


def agent_requester(name: str) -> str:
    """`agent:<name>`: the requester identity of an agent's tickets."""
    return f"{AGENT_PREFIX}{name}"


def agent_name_of(requester: str) -> str | None:
    """The agent's name when `requester` is an agent identity, else None."""
    return requester[len(AGENT_PREFIX) :] if requester.startswith(AGENT_PREFIX) else None


def _agent_entry(entry: str) -> dict[str, str]:
    name, separator, token_hash = entry.partition(":")
    if not separator:
        raise ValueError(f"entry {name!r} must look like name:argon2_hash_of_its_token")
    return {"name": name, "token_hash": token_hash}


def parse_mcp_agents(value: object) -> object:
    """`deploy-bot:$argon2id$...,etl:$argon2id$...` (or a JSON list) into agent dicts."""
    return parse_hash_list(value, _ENTRY_SEPARATOR, _agent_entry)


def unique_agent_names(agents: list[McpAgent]) -> list[McpAgent]:
    seen: set[str] = set()
    for agent in agents:
        if agent.name in seen:
            raise ValueError(f"agent {agent.name!r} is listed twice")
        seen.add(agent.name)
    return agents


def agents_that_could_approve(agents: Iterable[McpAgent], approvers: Iterable[str]) -> list[str]:
    """Approver entries an agent could pass for: any in the `agent:` namespace, or an agent's bare name."""
    names = {agent.name for agent in agents}
    return [approver for approver in approvers if approver.startswith(AGENT_PREFIX) or approver in names]
