"""Turning the configured approver list into the people who may decide on a ticket."""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from core.models import ResolveApproversInput
from core.names import ACTIVITY_RESOLVE_APPROVERS


class ApproverResolver(Protocol):
    """Expands group entries (e.g. a Slack user group) into individual identities."""

    async def resolve(self, approvers: list[str]) -> list[str]: ...


class LiteralApprovers:
    """Every entry is already a person: the resolver when no directory is configured."""

    async def resolve(self, approvers: list[str]) -> list[str]:
        return list(dict.fromkeys(approvers))


class ApproverActivities:
    def __init__(self, resolver: ApproverResolver) -> None:
        self._resolver = resolver

    @activity.defn(name=ACTIVITY_RESOLVE_APPROVERS)
    async def resolve_approvers(self, input: ResolveApproversInput) -> list[str]:
        return sorted(set(await self._resolver.resolve(input.approvers)))
