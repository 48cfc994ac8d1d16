"""The safety check's verdict on a whole plan: findings, the dry run's per-row diff, the risk."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from core.models.base import Model, Scalar
from core.models.revert import RevertCheck


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    BLOCKED = "blocked"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


class Finding(Model):
    """One rule's verdict on one operation (or on the plan when index is None)."""

    rule: str
    risk: Risk
    message: str
    operation_index: int | None = None


class RowChange(Model):
    before: dict[str, Scalar] | None = None
    after: dict[str, Scalar] | None = None
    key: str | None = None  # the row's key as in `OperationImpact.row_keys`


class OperationImpact(Model):
    """What one operation did in the dry run of the whole plan, in plan order."""

    operation_index: int
    kind: str
    table: str
    rows_affected: int
    preview: list[RowChange] = Field(default_factory=list)
    # Keys of every row touched (read, for a select), sorted; `new:<index>` names a row the plan inserts.
    row_keys: list[str] = Field(default_factory=list)
    # For an update or delete: a digest of the rows it touches as they were (activities/plan_runner.py);
    # execution refuses when the same keys now hold other values (a row changed or a key was reused).
    rows_version: str = ""
    # Counts, keys and preview withheld from view: the operation finds rows by a private value, and
    # what it matched would tell that value before anyone approved reading it (core/masking.py).
    withheld: bool = False


class Judgement(Model):
    """What the worker that judged a plan vouches for, signed (core/judgement.py): all that lets it run.

    The executor trusts no other account of the judgement: an activity retried through the task
    queue can be answered by any namespace client that polls it (red team 19).
    """

    workflow_id: str  # of the ticket whose request a front door signed: the ledger's key too
    requester: str  # from that signed request: kept from approving, charged the budget
    reverts: str = ""  # the workflow id of the ticket this plan reverts, from the same request
    plan_hash: str
    risk: Risk
    required_approvals: int
    excluded: list[str] = Field(default_factory=list)  # may not approve besides the requester (a revert's)
    approved_rows: list[int] = Field(default_factory=list)
    approved_row_keys: list[list[str]] = Field(default_factory=list)
    approved_versions: list[str] = Field(default_factory=list)
    # The plan's tables' definitions it was judged on (`activities.sql.shapes_digest`): a migration since
    # approval (a cascading key added, say) sends it back to be judged again.
    schema_digest: str = ""
    # The first run of the ticket's workflow, as Temporal names it: a workflow started under the ticket's id
    # once it closed is another chain, and runs nothing on this judgement (red team 63).
    first_run_id: str = ""
    proof: str = ""


class SafetyReport(Model):
    risk: Risk
    findings: list[Finding] = Field(default_factory=list)
    impacts: list[OperationImpact] = Field(default_factory=list)
    required_approvals: int = 0
    plan_hash: str = ""
    # Private columns per table the plan touches: their values are masked unless the plan was approved.
    private_columns: dict[str, list[str]] = Field(default_factory=dict)
    revert: RevertCheck | None = None  # set when the plan reverts an executed ticket
    schema_digest: str = ""  # the plan's tables' definitions the dry run ran on
    judgement: Judgement | None = None  # set by the worker that judged it, for the executor

    @property
    def approved_row_keys(self) -> list[list[str]]:
        """The row keys an approval of this report covers, one list per operation (`ExecutePlanInput`)."""
        return [list(impact.row_keys) for impact in self.impacts]

    @property
    def rows_affected(self) -> int:
        return sum(impact.rows_affected for impact in self.impacts if impact.kind != "select")

    @property
    def blocked(self) -> bool:
        return self.risk is Risk.BLOCKED
