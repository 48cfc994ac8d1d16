"""Undo: which ticket a revert undoes, how its plan is made, and what judging it found (docs/undo.md)."""

from __future__ import annotations

from pydantic import Field

from core.models.base import Model, Scalar
from core.models.plan import Plan


class RevertOf(Model):
    """Which executed ticket a revert ticket undoes, and whether it may overwrite later changes."""

    workflow_id: str = Field(min_length=1, max_length=80)
    include_conflicts: bool = False


class RowConflict(Model):
    """A row a revert would put back that someone changed after the original ran: before, after and now."""

    table: str
    key: str
    before: dict[str, Scalar] | None = None  # before the original (None: the original inserted it)
    after: dict[str, Scalar] | None = None  # right after the original (None: the original deleted it)
    now: dict[str, Scalar] | None = None  # today (None: the row is gone)


class RevertCheck(Model):
    """What judging a revert plan found beyond the rules every plan meets (activities/revert.py)."""

    reverts: str  # the original ticket's workflow id
    original_requester: str = ""  # may ask for the revert, never approve it
    original_approvals: int = 0  # people who approved the original: the revert needs at least as many
    # Who asked for the changes this revert undoes or, reverting a revert, puts back: none may approve it.
    excluded: list[str] = Field(default_factory=list)
    conflicts: list[RowConflict] = Field(default_factory=list)
    include_conflicts: bool = False


class PlanRevertInput(Model):
    ticket_id: str
    reverts: RevertOf


class RevertPlan(Model):
    """The inverse of an executed ticket's change, or why it cannot be reverted."""

    plan: Plan | None = None
    refusal: str = ""
