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


class LiteralApprovers:
    """Every entry is already a person: the resolver when no directory is configured."""

    async def resolve(self, approvers: list[str]) -> list[str]:
        return list(dict.fromkeys(approvers))


class ApproverActivities:
    """Only entries this worker is configured with (`APPROVERS`) may approve, whatever the ticket names.

    A ticket carries the list its front door copied from settings, but anyone who can start a workflow
    writes that list: a raw start that named its own approvers had a high-risk change approved by them
    (red team 17). The ticket's list may leave configured approvers out; it cannot add anyone.
    """

    def __init__(self, resolver: ApproverResolver, configured: Sequence[str]) -> None:
        self._resolver = resolver
        self._configured = frozenset(configured)

    @activity.defn(name=ACTIVITY_RESOLVE_APPROVERS)
    async def resolve_approvers(self, input: ResolveApproversInput) -> list[str]:
        allowed = [entry for entry in input.approvers if entry in self._configured]
        if len(allowed) < len(input.approvers):
            named = sorted(set(input.approvers) - self._configured)
            logger.warning("%s: approvers not configured on this worker, ignored: %s", input.ticket_id, named)
        return sorted(set(await self._resolver.resolve(allowed)))
