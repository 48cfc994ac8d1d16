"""Rich renderings of one ticket for the terminal: pure functions from models to renderables.

Kept apart from the commands so `show`, `submit --wait` and `approve` describe a ticket the
same way, and a test can render one without a server. The list of tickets is `cli.ticket_list`.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.styles import OUTCOME_STYLE, RISK_STYLE, STAGE_TEXT, add_row, status_style, when
from core.models import Risk, RowChange, Scalar, TicketOutcome, TicketStatus
from core.names import short_id_from, ticket_label
from rendering import words

PREVIEW_ROWS = 5


def _header(status: TicketStatus, reverted_by: str | None = None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    label = status.status_label
    shown = STAGE_TEXT[status.stage] if status.outcome is None else label
    add_row(table, "Status", Text(shown, status_style(label)))
    add_row(table, "Requester", f"{status.request.requester} (via {status.request.source.value})")
    if status.request.channel:
        add_row(table, "Channel", status.request.channel)
    add_row(table, "Created", when(status.created_at))
    add_row(table, "Updated", when(status.updated_at))
    add_row(table, "Workflow", status.workflow_id)
    if status.request.reverts is not None:
        add_row(table, "Undo", words.reverts_text(ticket_label(short_id_from(status.request.reverts.workflow_id))))
    if reverted_by:
        add_row(table, "Undo", Text(words.reverted_by_text(ticket_label(short_id_from(reverted_by))), "bold yellow"))
    if status.context_summary:
        add_row(table, "Context", status.context_summary)
    if status.review_rounds:
        add_row(table, "Review rounds", f"{status.review_rounds} (plan revised after reviewer feedback)")
        for note in status.feedback:
            add_row(table, "", Text(f"feedback: {note}", "italic"))
    return table


def _operations(status: TicketStatus) -> Table | None:
    if status.plan is None:
        return None
    impacts = {impact.operation_index: impact for impact in status.report.impacts} if status.report else {}
    worst: dict[int, Risk] = {}
    for finding in status.report.findings if status.report else []:
        if finding.operation_index is not None:
            current = worst.get(finding.operation_index, Risk.LOW)
            worst[finding.operation_index] = finding.risk if finding.risk.rank > current.rank else current
    table = Table(title="Plan operations", title_justify="left")
    for column in ("#", "kind", "table", "change", "rows matched by", "rows"):
        table.add_column(column, justify="right" if column in ("#", "rows") else "left")
    for index, operation in enumerate(status.plan.operations):
        change, where = words.change_text(operation), words.rows_text(operation)
        impact = impacts.get(index)
        kind = Text(operation.kind, RISK_STYLE.get(worst.get(index, Risk.LOW), ""))
        rows = str(impact.rows_affected) if impact else "—"
        add_row(table, str(index + 1), kind, operation.table, change, where, rows)
    if not status.plan.operations:
        add_row(table, "", "", "", "(no operations)", "", "")
    return table


def _findings(status: TicketStatus) -> Table | None:
    if status.report is None or not status.report.findings:
        return None
    table = Table(title="Safety findings", title_justify="left")
    table.add_column("op", justify="right")
    table.add_column("risk")
    table.add_column("rule")
    table.add_column("finding")
    for finding in status.report.findings:
        index = "plan" if finding.operation_index is None else str(finding.operation_index + 1)
        add_row(table, index, Text(finding.risk.value, RISK_STYLE[finding.risk]), finding.rule, finding.message)
    return table


def _row_text(row: dict[str, Scalar] | None, keys: Iterable[str]) -> str:
    return "—" if row is None else words.row_text(row, keys)


def _preview(status: TicketStatus) -> Table | None:
    if status.report is None:
        return None
    changes = [(impact, change) for impact in status.report.impacts for change in impact.preview[:PREVIEW_ROWS]]
    if not changes:
        return None
    table = Table(title="Preview (before → after)", title_justify="left")
    table.add_column("op", justify="right")
    table.add_column("table")
    table.add_column("before")
    table.add_column("after")
    for impact, change in changes:
        keys = _changed_keys(change)
        add_row(
            table,
            str(impact.operation_index + 1),
            impact.table,
            _row_text(change.before, keys),
            _row_text(change.after, keys),
        )
    return table


def _changed_keys(change: RowChange) -> list[str]:
    """Identity columns plus the columns that change, so a wide row stays readable."""
    before, after = change.before or {}, change.after or {}
    keys = list(dict.fromkeys([*before, *after]))
    changed = [key for key in keys if before.get(key) != after.get(key)]
    identity = [key for key in keys if key == "id" or key.endswith(("_id", "email", "name", "slug"))][:3]
    chosen = list(dict.fromkeys([*identity, *changed]))
    return chosen or keys[:6]


def _conflicts(status: TicketStatus) -> Table | None:
    """A revert's rows changed since the original ran: before it, right after it, and now."""
    check = status.report.revert if status.report else None
    if check is None or not check.conflicts:
        return None
    heading = words.conflicts_heading(check, ticket_label(short_id_from(check.reverts)))
    table = Table(title=f"Conflicts: {heading}", title_justify="left")
    for column in ("table", "row", *words.CONFLICT_SIDES):
        table.add_column(column)
    for conflict in check.conflicts:
        sides = [words.conflict_side_text(conflict, side) for side in words.CONFLICT_SIDES]
        add_row(table, conflict.table, conflict.key, *sides)
    return table


def _decisions(status: TicketStatus) -> Table | None:
    if not status.decisions:
        return None
    table = Table(title="Decisions", title_justify="left")
    for column in ("when", "who", "decision", "from", "verdict", "comment"):
        table.add_column(column)
    for record in status.decisions:
        decision = record.decision
        verb = Text(words.decision_verb(decision), "green" if decision.approve else "red")
        verdict = Text(words.verdict_text(record), "green" if record.accepted else "yellow")
        add_row(
            table, when(record.received_at), decision.decider, verb, decision.source.value, verdict, decision.comment
        )
    return table


def approval_panel(status: TicketStatus) -> Panel | None:
    """What is pending and the exact commands that decide it."""
    approval = status.approval
    if not status.pending_approval or approval is None:
        return None
    label = ticket_label(status.ticket_id)
    lines = Text()
    lines.append(f"Needs {approval.required_approvals} approval(s)", "bold")
    lines.append(f" ({len(status.approved_by)} so far) from: {', '.join(approval.approvers) or 'nobody configured'}\n")
    if status.approved_by:
        lines.append(f"Approved by {', '.join(status.approved_by)}; {status.approvals_needed} more needed\n")
    lines.append(f"Deadline: {when(approval.deadline)}   request {approval.request_id}, plan {approval.plan_hash}\n")
    lines.append("Approve: ", "bold")
    lines.append(f"agent-ticket approve {label} --as <approver>\n", "green")
    lines.append("Reject:  ", "bold")
    lines.append(f'agent-ticket reject {label} --reason "…" [--replan] --as <approver>', "red")
    return Panel(lines, title="Awaiting approval", title_align="left", border_style="cyan")


def outcome_panel(outcome: TicketOutcome) -> Panel:
    text = Text()
    text.append(outcome.status.value, OUTCOME_STYLE[outcome.status])
    text.append(f": {outcome.reason}\n")
    if outcome.execution is not None:
        replayed = " (already applied earlier; not applied again)" if outcome.execution.replayed else ""
        text.append(f"Rows changed: {outcome.execution.rows_changed}{replayed}\n")
    if outcome.decided_by:
        text.append(f"Decided by: {', '.join(outcome.decided_by)}\n")
    text.append(f"Finished: {when(outcome.finished_at)}")
    return Panel(text, title="Outcome", title_align="left", border_style=OUTCOME_STYLE[outcome.status].split()[-1])


def status_view(status: TicketStatus, reverted_by: str | None = None) -> RenderableType:
    """Everything `show` prints: request, stage, plan, findings, blast radius, conflicts, decisions, outcome.

    `reverted_by`: the workflow id of the ticket that undid this one's change, from its audit trail.
    """
    request = Panel(Text(status.request.text), title="Request", title_align="left")
    parts: list[RenderableType] = [_header(status, reverted_by), request]
    if status.plan is not None:
        summary = Text(status.plan.summary, "bold")
        if status.plan.rationale:
            summary.append(f"\n{status.plan.rationale}", "dim")
        summary.append(f"\nplanner: {status.plan.planner}", "dim")
        if status.plan_hash:
            summary.append(f"   plan hash: {status.plan_hash}", "dim")
        parts.append(Panel(summary, title="Plan", title_align="left"))
    if status.report is not None:
        risk = status.report.risk
        line = Text("Risk: ")
        line.append(risk.value, RISK_STYLE[risk])
        line.append(f"   rows affected: {status.report.rows_affected}")
        line.append(f"   approvals required: {status.report.required_approvals}")
        parts.append(line)
    for section in (_operations(status), _findings(status), _preview(status), _conflicts(status), _decisions(status)):
        if section is not None:
            parts.append(section)
    pending = approval_panel(status)
    if pending is not None:
        parts.append(pending)
    if status.outcome is not None:
        parts.append(outcome_panel(status.outcome))
    return Panel(Group(*parts), title=Text(ticket_label(status.ticket_id)), title_align="left")
