"""Inputs of the activities that do a ticket's steps: context, plan, safety check, execution, approvers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from core.models.base import Model
from core.models.context import TicketContext
from core.models.decisions import Decision
from core.models.plan import Plan
from core.models.request import TicketRequest
from core.models.revert import RevertOf
from core.models.safety import Judgement
from core.models.status import ExecutionResult


class GatherContextInput(Model):
    ticket_id: str
    request: TicketRequest


class PlanTicketInput(Model):
    ticket_id: str
    request: TicketRequest
    context: TicketContext
    feedback: list[str] = Field(default_factory=list)


class ValidatePlanInput(Model):
    ticket_id: str
    plan: Plan
    # The ticket's request, whose signature the judgement rests on; its requester and revert target
    # are the ones judged. Without one (tools and tests), the two fields below, and no signed judgement.
    request: TicketRequest | None = None
    requester: str = ""  # whose budget of unapproved changes the plan would spend ("": none checked)
    reverts: RevertOf | None = None  # the plan claims to revert this ticket: checked against its before-images
    first_run_id: str = ""  # the asking workflow's first run: the judgement holds only for its runs

    @property
    def judged_requester(self) -> str:
        return self.request.requester if self.request is not None else self.requester

    @property
    def judged_reverts(self) -> RevertOf | None:
        return self.request.reverts if self.request is not None else self.reverts


class ExecutePlanInput(Model):
    ticket_id: str
    workflow_id: str
    plan: Plan
    plan_hash: str
    approved_rows: list[int] = Field(default_factory=list)
    # The row keys each operation touched in the approved dry run (`SafetyReport.approved_row_keys`);
    # when given, execution refuses with ERROR_APPROVED_ROWS_CHANGED if it would touch any others.
    approved_row_keys: list[list[str]] = Field(default_factory=list)
    approved_versions: list[str] = Field(default_factory=list)  # `OperationImpact.rows_version`, per operation
    # `SafetyReport.schema_digest`; the signed judgement's copy counts where there is one.
    schema_digest: str = ""
    requester: str = ""  # charged for the rows changed when no one approved the plan
    approved_by: list[str] = Field(default_factory=list)  # empty: ran without approval (budget, masking)
    reverts: str = ""  # the workflow id of the ticket this plan reverts: claimed in the same transaction
    # What lets the plan run, checked again where it runs (activities/authority.py): the judging
    # worker's signed judgement, and the signed decisions that approved it on this approval request.
    judgement: Judgement | None = None
    approvals: list[Decision] = Field(default_factory=list)
    # The record a run of a plan that needed no approval claims in its transaction, as an approved plan's
    # claims its approval request: a ticket told nothing ran waits on it for an open run (red team 66).
    run_key: str = Field(default="", max_length=100)


class FindExecutionInput(Model):
    """The plan whose run the ledger is asked about, under the asking workflow's own id."""

    plan_hash: str
    # What the run claims: the approval request its approvals answered, else its run key. Spent if the plan
    # did not run, after waiting out an open run's claim, so that no run of it commits later.
    claim: str = Field(default="", max_length=100)


class ExecutionLookup(Model):
    """What the ledger holds for a plan: its stored result if it ran (committed with its writes), else None."""

    result: ExecutionResult | None = None


class ResolveApproversInput(Model):
    ticket_id: str
    approvers: list[str]


class VerifyRequestInput(Model):
    """A new ticket's request, the workflow id it was started under and when Temporal started it."""

    workflow_id: str
    request: TicketRequest
    started_at: datetime


class RequestCheck(Model):
    """The worker's verdict on a request's proof: None when the ticket may go on."""

    problem: str | None = None
