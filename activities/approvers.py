"""Turning the configured approver list into the people who may decide on a ticket."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from temporalio import activity

from core.models import ResolveApproversInput
from core.names import ACTIVITY_RESOLVE_APPROVERS

logger = logging.getLogger(__name__)


class ApproverResolver(Protocol):
    """Expands group entries (e.g. a Slack user group) into individual identities."""

    async def resolve(self, approvers: list[str]) -> list[str]: ...


class ApproverCheck(Protocol):
    """Whether the approver list this worker is configured with names a person now."""

    async def includes(self, person: str) -> bool: ...


class LiteralApprovers:
    """Every entry is already a person: the resolver when no directory is configured."""

    async def resolve(self, approvers: list[str]) -> list[str]:
        return list(dict.fromkeys(approvers))


class ConfiguredApprovers:
    """The worker's own `APPROVERS`, groups expanded when asked: the one source of who may decide.

    A ticket carries the list its front door copied from settings, but anyone who can start a workflow
    writes that list: a raw start that named its own approvers had a high-risk change approved by them
    (red team 17). And a ticket may wait for days: someone taken out of `APPROVERS`, or out of a group
    in it, while it waited could still approve it when the list was only read as approval opened (red
    team 18). So the list is narrowed when approval opens, and every decider is asked about again.
    """

    def __init__(self, resolver: ApproverResolver, configured: Sequence[str]) -> None:
        self._resolver = resolver
        self._configured = list(dict.fromkeys(configured))

    async def narrow(self, ticket_id: str, named: Sequence[str]) -> list[str]:
        """The people `named` stands for, leaving out entries this worker is not configured with."""
        allowed = [entry for entry in named if entry in self._configured]
        if len(allowed) < len(named):
            unknown = sorted(set(named) - set(self._configured))
            logger.warning("%s: approvers not configured on this worker, ignored: %s", ticket_id, unknown)
        return sorted(set(await self._resolver.resolve(allowed)))

    async def includes(self, person: str) -> bool:
        """Whether `APPROVERS` names `person` now, directly or through a group."""
        if person in self._configured:
            return True
        return person in await self._resolver.resolve(self._configured)


class ApproverActivities:
    """Only entries this worker is configured with may approve, whatever the ticket names."""

    def __init__(self, approvers: ConfiguredApprovers) -> None:
        self._approvers = approvers

    @activity.defn(name=ACTIVITY_RESOLVE_APPROVERS)
    async def resolve_approvers(self, input: ResolveApproversInput) -> list[str]:
        return await self._approvers.narrow(input.ticket_id, input.approvers)
