"""What a worker trusts a proof with: the keys only workers hold, and whom it lets decide."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from activities.approvers import ApproverCheck


@dataclass(frozen=True)
class WorkerTrust:
    """The signing keys (current first), whether unsigned proofs may pass (`agent-ticket dev`), the
    worker's approvers, and the configured agents' requester names (`agent:<name>`), whose unsigned
    requests are accepted (`MCP_AGENTS`)."""

    keys: list[bytes]
    allow_unsigned: bool
    approvers: ApproverCheck
    agents: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, keys: list[bytes], allow_unsigned: bool, approvers: ApproverCheck, agents: Collection[str] = ()
    ) -> WorkerTrust:
        return cls(keys, allow_unsigned, approvers, frozenset(agents))
