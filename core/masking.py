"""Masking private values: pure functions over the shared models, safe to call from workflow code.

The activities mask at the source (the dry run's preview always, select results of a plan no one
approved), so private values never enter history unapproved. These functions let any reader
(the workflow's `status` query, the bot, the dashboard, the CLI) apply the same rule again to
what it shows, e.g. to results recorded before masking existed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from core.models import (
    ExecutionResult,
    Filter,
    OutcomeStatus,
    Plan,
    SafetyReport,
    Scalar,
    SelectOperation,
    TicketStatus,
)

MASK = "[private]"
WITHHELD = "details withheld until the plan is approved: it finds rows by a private value"


def mask_row(row: Mapping[str, Scalar], private: Collection[str]) -> dict[str, Scalar]:
    """`row` with the value of every private column (that has one) replaced by `MASK`."""
    return {name: MASK if name in private and value is not None else value for name, value in row.items()}


def mask_execution(result: ExecutionResult, private_columns: Mapping[str, Collection[str]]) -> ExecutionResult:
    """The result with private values in the rows selects returned masked."""
    results = [
        item.model_copy(update={"rows": [mask_row(row, private_columns.get(item.table, ())) for row in item.rows]})
        if item.rows and private_columns.get(item.table)
        else item
        for item in result.results
    ]
    return result.model_copy(update={"results": results})


def mask_report(report: SafetyReport) -> SafetyReport:
    """The report with private values the dry run read (rows as they were) masked in its preview.

    Values after a change are the plan's own values or keys, so they stay as they are.
    """
    impacts = []
    for impact in report.impacts:
        private = report.private_columns.get(impact.table, [])
        if not private:
            impacts.append(impact)
            continue
        preview = [
            change.model_copy(update={"before": mask_row(change.before, private) if change.before else change.before})
            for change in impact.preview
        ]
        impacts.append(impact.model_copy(update={"preview": preview}))
    return report.model_copy(update={"impacts": impacts})


def private_lookups(plan: Plan, private_columns: Mapping[str, Collection[str]]) -> set[int]:
    """Indexes of the operations that find rows by a private value, or return one.

    Which rows such an operation matched, or how many, answers a question about the private
    value (`email like 'a%'`: one row or none), so it is an oracle until people approve it;
    so does every operation after such a write, which sees what it changed.
    """
    found = set()
    for index, operation in enumerate(plan.operations):
        private = set(private_columns.get(operation.table, ()))
        filters: list[Filter] = list(getattr(operation, "filters", []))
        returned = isinstance(operation, SelectOperation) and bool(set(operation.columns or private) & private)
        if private and (returned or any(item.column in private for item in filters)):
            found.add(index)
    # A write that found its rows by a private value marks them (`set name = 'x' where email like
    # 'a%'`); an operation after it, though ordinary, can count and name them (`where name = 'x'`).
    writes = [index for index in found if not isinstance(plan.operations[index], SelectOperation)]
    if writes:
        found.update(range(min(writes), len(plan.operations)))
    return found


def withhold_lookups(report: SafetyReport, plan: Plan) -> SafetyReport:
    """The report with what private lookups matched withheld: counts, keys, preview and their findings' words."""
    hidden = private_lookups(plan, report.private_columns)
    if not hidden:
        return report
    impacts = [
        impact.model_copy(
            update={"rows_affected": 0, "row_keys": [], "preview": [], "rows_version": "", "withheld": True}
        )
        if impact.operation_index in hidden
        else impact
        for impact in report.impacts
    ]
    findings = [
        finding
        if finding.rule.startswith("private_")
        or (finding.operation_index is not None and finding.operation_index not in hidden)
        else finding.model_copy(update={"message": f"{finding.rule}: {WITHHELD}"})
        for finding in report.findings
    ]
    return report.model_copy(update={"impacts": impacts, "findings": findings})


def people_approved(status: TicketStatus) -> bool:
    """Whether people approved the plan and it ran: only then may its requester see what it read."""
    outcome = status.outcome
    return outcome is not None and outcome.status is OutcomeStatus.DONE and bool(outcome.decided_by)


def mask_status(status: TicketStatus) -> TicketStatus:
    """What a UI may show: private values masked unless people approved the plan that read them.

    Until then, what an operation that finds rows by a private value matched is withheld too.
    """
    report = mask_report(status.report) if status.report else None
    if report is not None and status.plan is not None and not people_approved(status):
        report = withhold_lookups(report, status.plan)
    outcome = status.outcome
    if outcome is not None and outcome.execution is not None and not people_approved(status):
        private = report.private_columns if report else {}
        outcome = outcome.model_copy(update={"execution": mask_execution(outcome.execution, private)})
    return status.model_copy(update={"report": report, "outcome": outcome})


def withheld_rows_changed(reason: str, report: SafetyReport, plan: Plan) -> str:
    """Why an approved plan's rows changed, unless it finds rows by a private value: then which is withheld.

    The reason names the rows that now match or no longer do, which answers the lookup's question.
    """
    if not private_lookups(plan, report.private_columns):
        return reason
    return f"the rows changed since approval ({WITHHELD})"
