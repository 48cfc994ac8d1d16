"""Ticket state → Slack Block Kit, as pure functions of `TicketStatus`.

Nothing here does I/O, so a test can render every message without Slack, and the Slack
SDK's models check field limits when a message is serialised. Text from people and from
the LLM is escaped (no `<!channel>` pings, no disguised links) and cut to Slack's limits:
3000 characters per section, 50 blocks per message, 2000 per button value.

The worker's notifier renders the channel message with these functions and the bot renders
status replies and the reject modal with them, so both always show the same thing. Plans,
filters, values and decisions are put into words by `rendering.words`; this module marks them
up as mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from core.agents import agent_name_of
from core.models import (
    DecisionRecord,
    OutcomeStatus,
    RevertCheck,
    Risk,
    SafetyReport,
    Stage,
    TicketRequest,
    TicketSource,
    TicketStatus,
)
from core.names import short_id_from, ticket_label
from core.schema import TicketRow
from rendering import words
from rendering.slack_ids import (
    APPROVE_ACTION_ID,
    DASHBOARD_ACTION_ID,
    MAX_REASON,
    REASON_BLOCK_ID,
    REASON_INPUT_ACTION_ID,
    REJECT_ACTION_ID,
    REJECT_MODAL_CALLBACK_ID,
    REPLAN_BLOCK_ID,
    REPLAN_INPUT_ACTION_ID,
    REPLAN_OPTION,
    UNDO_ACTION_ID,
    ButtonValue,
    RejectModalMetadata,
    UndoValue,
)

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
FALLBACK_LIMIT = 3000
MAX_BLOCKS = 50
MAX_CONTEXT_ELEMENTS = 10
MAX_PREVIEW_ROWS = 5
MAX_CONFLICT_ROWS = 5
MAX_LIST_ITEMS = 20
# One line of a plan's description (an operation, a finding, a row's change): cut to its own share, so a
# long one never pushes the ones after it out of the message.
LINE_LIMIT = 600
MAX_PART_SECTIONS = 5  # per part of a plan's description (operations, findings, preview), of a message's 50 blocks
MORE_LINES = "… and {count} more (the dashboard shows them all)"

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

RISK_EMOJI = {
    Risk.LOW: ":large_green_circle:",
    Risk.MEDIUM: ":large_yellow_circle:",
    Risk.HIGH: ":red_circle:",
    Risk.BLOCKED: ":no_entry:",
}
STAGE_HEADINGS = {
    Stage.RECEIVED: ":inbox_tray: Received",
    Stage.GATHERING_CONTEXT: ":mag: Gathering context",
    Stage.PLANNING: ":brain: Planning",
    Stage.VALIDATING: ":shield: Checking the plan",
    Stage.AWAITING_APPROVAL: ":raised_hand: Awaiting approval",
    Stage.EXECUTING: ":gear: Executing",
}
OUTCOME_HEADINGS = {
    OutcomeStatus.DONE: ":white_check_mark: Done",
    OutcomeStatus.REJECTED: ":x: Rejected",
    OutcomeStatus.BLOCKED: ":no_entry: Blocked",
    OutcomeStatus.EXPIRED: ":hourglass: Expired",
    OutcomeStatus.FAILED: ":warning: Failed",
    OutcomeStatus.CANCELLED: ":no_entry_sign: Cancelled",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message's notification text (also what screen readers and old clients show) and its blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """Keyword arguments for `chat.postMessage` / `chat.update` / `chat.postEphemeral`."""
        return {"text": self.text, "blocks": [block.to_dict() for block in self.blocks]}


# ------------------------------------------------------------------ text helpers


def escape(text: str) -> str:
    """Slack's three control characters, so untrusted text can't mention, link or format."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def mention(identity: str) -> str:
    """`<@U…>` for a Slack user id (Slack shows the name), the escaped identity otherwise (CLI users)."""
    return f"<@{identity}>" if SLACK_USER_ID.match(identity) else escape(identity)


def mentions(identities: Iterable[str]) -> str:
    return ", ".join(mention(identity) for identity in identities) or "nobody"


def slack_date(moment: datetime) -> str:
    """Shown in each reader's own time zone; the fallback is UTC."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def code(text: str) -> str:
    return "`" + escape(truncate(text, 200)).replace("`", "'") + "`"


def dashboard_url(public_url: str, ticket_id: str) -> str:
    return f"{public_url.rstrip('/')}/tickets/{ticket_id}"


def section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)), block_id=block_id)


def bulleted(lines: Sequence[str], limit: int = MAX_LIST_ITEMS) -> str:
    shown = list(lines[:limit])
    if len(lines) > limit:
        shown.append(f"… and {len(lines) - limit} more")
    return "\n".join(shown)


def sections(heading: str, lines: Sequence[str], limit: int = MAX_LIST_ITEMS) -> list[SectionBlock]:
    """`heading` and then the lines, each cut to `LINE_LIMIT`, in as many sections as they fill (at most
    `MAX_PART_SECTIONS`); what does not fit is counted, never dropped silently.

    One section cut at Slack's 3000 characters let a padded first operation hide a later one from the
    approvers entirely (red team 26); cut line by line, each operation at least shows what it is.
    """
    shown = [truncate(line, LINE_LIMIT) for line in lines[:limit]]
    texts = [heading]
    for index, line in enumerate(shown):
        if len(texts[-1]) + 1 + len(line) <= SECTION_LIMIT - len(MORE_LINES):
            texts[-1] += "\n" + line
        elif len(texts) < MAX_PART_SECTIONS:
            texts.append(line)
        else:
            texts[-1] += "\n" + MORE_LINES.format(count=len(lines) - index)
            return [section(text) for text in texts]
    if len(lines) > limit:
        texts[-1] += "\n" + MORE_LINES.format(count=len(lines) - limit)
    return [section(text) for text in texts]


# ------------------------------------------------------------------ describing a plan

# The words are `rendering.words`'; Slack sets names and values in code spans and escapes the rest.
MRKDWN = words.Marks(name=code, value=code, strong=lambda text: f"*{text}*", person=mention, text=escape)


def risk_blocks(report: SafetyReport) -> list[SectionBlock]:
    affected = words.count(report.rows_affected, "row")
    findings = [
        f"• {RISK_EMOJI[finding.risk]} "
        + (f"_(operation {finding.operation_index + 1})_ " if finding.operation_index is not None else "")
        + escape(finding.message)
        for finding in report.findings
    ]
    return sections(f"*Risk:* {RISK_EMOJI[report.risk]} {report.risk.value} · {affected} affected", findings)


def preview_blocks(report: SafetyReport) -> list[SectionBlock]:
    lines: list[str] = []
    for impact in report.impacts:
        if impact.kind == "select" or not impact.preview:
            continue
        lines.append(f"*{impact.operation_index + 1}. {escape(impact.kind)} {code(impact.table)}*")
        lines.extend(f"  {words.row_change_text(change, MRKDWN)}" for change in impact.preview[:MAX_PREVIEW_ROWS])
        if impact.rows_affected > MAX_PREVIEW_ROWS:
            lines.append(f"  … {impact.rows_affected - MAX_PREVIEW_ROWS} more row(s)")
    # Every operation's heading and rows count against the list's length: none is dropped for it.
    return sections("*Before → after*", lines, limit=len(lines)) if lines else []


def conflicts_text(check: RevertCheck) -> str | None:
    """A revert's rows changed since the original ran, before / after / now: what blocks it, or what it overwrites."""
    if not check.conflicts:
        return None
    original = ticket_label(short_id_from(check.reverts))
    lines = [f":warning: *Conflicts:* {words.conflicts_heading(check, original, MRKDWN)}"]
    for conflict in check.conflicts[:MAX_CONFLICT_ROWS]:
        title, *sides = words.conflict_lines(conflict, MRKDWN)
        lines.append(f"• {title}")
        lines.extend(f"      {side}" for side in sides)
    if len(check.conflicts) > MAX_CONFLICT_ROWS:
        lines.append(f"… and {words.count(len(check.conflicts) - MAX_CONFLICT_ROWS, 'more row')}")
    return "\n".join(lines)


# ------------------------------------------------------------------ message parts


def heading(status: TicketStatus) -> str:
    state = OUTCOME_HEADINGS[status.outcome.status] if status.outcome else STAGE_HEADINGS[status.stage]
    return truncate(f"{ticket_label(status.ticket_id)} · {state}", HEADER_LIMIT)


def requested_by(request: TicketRequest) -> str:
    """Who filed the ticket and through which door; an agent's ticket says it is one, with its reason."""
    agent = agent_name_of(request.requester)
    if request.source is TicketSource.MCP and agent is not None:
        filed = f"Filed by agent {code(agent)} through MCP"
        return f"{filed} · reason: {escape(request.reason)}" if request.reason else filed
    return f"Requested by {mention(request.requester)} via {request.source.value}"


def header_blocks(status: TicketStatus) -> list[Block]:
    request = status.request
    quoted = "\n".join(f"&gt; {line}" for line in escape(request.text).splitlines())
    context = [requested_by(request), slack_date(status.created_at)]
    if request.reverts is not None:
        context.insert(0, words.reverts_text(ticket_label(short_id_from(request.reverts.workflow_id)), MRKDWN))
    if status.plan is not None:
        context.append(f"planner: {escape(status.plan.planner)}")
    return [
        HeaderBlock(text=PlainTextObject(text=heading(status), emoji=True)),
        section(quoted),
        ContextBlock(elements=[MarkdownTextObject(text=truncate(" · ".join(context), SECTION_LIMIT))]),
    ]


def plan_blocks(status: TicketStatus) -> list[Block]:
    """Summary, operations, risk with findings, rows affected, before → after preview."""
    plan, report = status.plan, status.report
    if plan is None:
        return []
    summary = f"*Plan:* {escape(plan.summary)}"
    if plan.rationale:
        summary += f"\n_{escape(plan.rationale)}_"
    blocks: list[Block] = [DividerBlock(), section(summary)]
    if status.feedback:
        rounds = f" (review round {status.review_rounds + 1})" if status.review_rounds else ""
        feedback = [f"• {escape(item)}" for item in status.feedback]
        blocks.append(section(f"*Reviewer feedback so far*{rounds}\n" + bulleted(feedback)))
    operations = words.plan_lines(plan, MRKDWN)
    blocks.extend(sections("*Operations*", operations) if operations else [section("*Operations*\n_none_")])
    if report is not None:
        blocks.extend(risk_blocks(report))
        blocks.extend(preview_blocks(report))
        conflicts = conflicts_text(report.revert) if report.revert is not None else None
        if conflicts:
            blocks.append(section(conflicts))
    return blocks


def decision_lines(records: Sequence[DecisionRecord]) -> list[str]:
    return words.decision_lines(records, MRKDWN)


def approval_progress(status: TicketStatus) -> str:
    """Who has approved the current request and how many more it needs: the workflow's own count."""
    remaining = status.approvals_needed
    more = f"{remaining} more approval{'s' if remaining != 1 else ''} needed"
    if not status.approved_by:
        return f"_No approvals yet; {more}._"
    approval = status.approval
    comments = [
        f"• {mention(record.decision.decider)}: {escape(record.decision.comment)}"
        for record in status.decisions
        if approval is not None
        and record.accepted
        and record.decision.approve
        and record.decision.comment
        and record.decision.request_id == approval.request_id
    ]
    return "\n".join([f":white_check_mark: Approved so far by {mentions(status.approved_by)}; {more}.", *comments])


def approval_blocks(status: TicketStatus, public_url: str | None) -> list[Block]:
    """Who must decide by when, and the buttons (only while the request is pending)."""
    approval = status.approval
    if approval is None:
        return []
    needed = approval.required_approvals
    text = (
        f"*Needs {needed} approval{'s' if needed != 1 else ''}* from {mentions(approval.approvers)} "
        f"by {slack_date(approval.deadline)}.\n{approval_progress(status)}"
    )
    value = ButtonValue(
        workflow_id=status.workflow_id, request_id=approval.request_id, plan_hash=approval.plan_hash
    ).encode()
    buttons = [
        ButtonElement(
            text=PlainTextObject(text="Approve", emoji=True),
            action_id=APPROVE_ACTION_ID,
            value=value,
            style="primary",
            confirm=ConfirmObject(
                title="Run this plan?",
                text=truncate(
                    f"{ticket_label(status.ticket_id)} changes production data: {escape(status.request.text)}", 300
                ),
                confirm="Approve",
                deny="Cancel",
            ),
        ),
        ButtonElement(
            text=PlainTextObject(text="Reject", emoji=True), action_id=REJECT_ACTION_ID, value=value, style="danger"
        ),
    ]
    if public_url:
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text="View in dashboard", emoji=True),
                action_id=DASHBOARD_ACTION_ID,
                url=dashboard_url(public_url, status.ticket_id),
            )
        )
    return [DividerBlock(), section(text), ActionsBlock(elements=buttons)]


def outcome_blocks(status: TicketStatus) -> list[Block]:
    outcome = status.outcome
    if outcome is None:
        return []
    lines = [f"*{OUTCOME_HEADINGS[outcome.status]}* — {outcome_reason(status)}"]
    lines.extend(decision_lines(status.decisions) if outcome.status is not OutcomeStatus.REJECTED else [])
    return [DividerBlock(), section("\n".join(lines))]


def outcome_reason(status: TicketStatus) -> str:
    """The reason in people's words, with deciders shown as Slack mentions."""
    outcome = status.outcome
    assert outcome is not None
    if outcome.status is OutcomeStatus.DONE and outcome.execution is not None:
        return f"executed: {words.count(outcome.execution.rows_changed, 'row')} changed."
    if outcome.status is OutcomeStatus.REJECTED:
        rejection = next(
            (r.decision for r in reversed(status.decisions) if r.accepted and not r.decision.approve), None
        )
        if rejection is not None:
            reason = escape(rejection.comment) if rejection.comment else "no reason given"
            return f"rejected by {mention(rejection.decider)}: {reason}"
    return escape(outcome.reason)


def undo_deadline(status: TicketStatus, revert_window: timedelta) -> datetime | None:
    """Until when the ticket's change can be undone: it is done, changed rows, and its images are still kept."""
    outcome = status.outcome
    if outcome is None or outcome.status is not OutcomeStatus.DONE or outcome.execution is None:
        return None
    if outcome.execution.rows_changed == 0:
        return None
    return outcome.finished_at + revert_window


def undo_blocks(status: TicketStatus, revert_window: timedelta | None, now: datetime | None) -> list[Block]:
    """The Undo button, while the revert window is open; a click starts a revert ticket (docs/undo.md)."""
    if revert_window is None or now is None:
        return []
    deadline = undo_deadline(status, revert_window)
    if deadline is None or deadline <= now:
        return []
    label = ticket_label(status.ticket_id)
    button = ButtonElement(
        text=PlainTextObject(text="Undo", emoji=True),
        action_id=UNDO_ACTION_ID,
        value=UndoValue(workflow_id=status.workflow_id).encode(),
        confirm=ConfirmObject(
            title="Undo this change?",
            text=truncate(
                f"This files a ticket that puts the rows {label} changed back as they were. "
                "It needs the approvals the original needed; rows changed since block it.",
                300,
            ),
            confirm="Undo",
            deny="Cancel",
        ),
    )
    note = f"Can be undone until {slack_date(deadline)}."
    return [ActionsBlock(elements=[button]), ContextBlock(elements=[MarkdownTextObject(text=note)])]


def footer_blocks(status: TicketStatus, public_url: str | None) -> list[Block]:
    """A plain link, not a button: a finished message carries no button but Undo."""
    if not public_url or status.pending_approval:
        return []
    link = f"<{dashboard_url(public_url, status.ticket_id)}|View {ticket_label(status.ticket_id)} in the dashboard>"
    return [ContextBlock(elements=[MarkdownTextObject(text=link)])]


def limited(blocks: list[Block]) -> list[Block]:
    """At most 50 blocks; the buttons, when present, are kept last."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    tail = [block for block in blocks[-3:] if isinstance(block, ActionsBlock)]
    return blocks[: MAX_BLOCKS - len(tail)] + tail


# ------------------------------------------------------------------ one function per message kind


def received_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    blocks = [*header_blocks(status), section("_Gathering context and planning…_")]
    return SlackMessage(fallback(status, "received"), limited([*blocks, *footer_blocks(status, public_url)]))


def planning_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    step = {
        Stage.GATHERING_CONTEXT: "_Gathering context…_",
        Stage.PLANNING: "_Asking the planner for a plan…_",
        Stage.VALIDATING: "_Checking the plan against the safety policy…_",
    }.get(status.stage, "_Working…_")
    blocks = [*header_blocks(status), *plan_blocks(status), section(step)]
    return SlackMessage(fallback(status, status.stage.value), limited([*blocks, *footer_blocks(status, public_url)]))


def plan_ready_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    """The plan runs without approval: show what is about to happen."""
    blocks = [*header_blocks(status), *plan_blocks(status), section("_No approval needed: executing…_")]
    return SlackMessage(fallback(status, "executing"), limited([*blocks, *footer_blocks(status, public_url)]))


def awaiting_approval_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    blocks = [*header_blocks(status), *plan_blocks(status), *approval_blocks(status, public_url)]
    return SlackMessage(fallback(status, "awaiting approval"), limited(blocks))


def decided_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    """Approved and executing: the buttons are gone, the deciders are named."""
    lines = decision_lines(status.decisions)
    blocks = [
        *header_blocks(status),
        *plan_blocks(status),
        DividerBlock(),
        section("\n".join([*lines, "_Executing…_"])),
    ]
    return SlackMessage(fallback(status, "approved, executing"), limited([*blocks, *footer_blocks(status, public_url)]))


def finished_message(
    status: TicketStatus,
    public_url: str | None = None,
    *,
    revert_window: timedelta | None = None,
    now: datetime | None = None,
) -> SlackMessage:
    """The outcome; a done ticket that changed rows offers Undo while `now` is within its revert window."""
    blocks = [*header_blocks(status), *plan_blocks(status), *outcome_blocks(status)]
    tail = [*undo_blocks(status, revert_window, now), *footer_blocks(status, public_url)]
    return SlackMessage(outcome_text(status), limited([*blocks, *tail]))


def ticket_message(
    status: TicketStatus,
    public_url: str | None = None,
    *,
    revert_window: timedelta | None = None,
    now: datetime | None = None,
) -> SlackMessage:
    """The one channel message of a ticket, for whatever stage it is in (Undo needs the window and the time)."""
    if status.outcome is not None:
        return finished_message(status, public_url, revert_window=revert_window, now=now)
    if status.pending_approval:
        return awaiting_approval_message(status, public_url)
    if status.stage is Stage.EXECUTING:
        decided = any(record.accepted for record in status.decisions)
        return decided_message(status, public_url) if decided else plan_ready_message(status, public_url)
    if status.stage is Stage.RECEIVED:
        return received_message(status, public_url)
    return planning_message(status, public_url)


def status_reply(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    """`/agent-ticket status`: the ticket as the channel sees it, minus the buttons."""
    message = ticket_message(status, public_url)
    blocks = [block for block in message.blocks if not isinstance(block, ActionsBlock)]
    return SlackMessage(message.text, blocks)


def reminder_message(status: TicketStatus) -> SlackMessage:
    """Posted in the ticket's thread: the requester and the approvers hear it is still waiting."""
    label = ticket_label(status.ticket_id)
    text = f"{mention(status.request.requester)} {label} is still waiting for approval"
    if status.approval is not None:
        text += f" from {mentions(status.approval.approvers)}; it expires {slack_date(status.approval.deadline)}"
    return SlackMessage(text=truncate(text + ".", FALLBACK_LIMIT), blocks=[section(text + ".")])


def escalation_message(status: TicketStatus, public_url: str | None = None) -> SlackMessage:
    label = ticket_label(status.ticket_id)
    parts = [f":rotating_light: {label} has been waiting for approval since {slack_date(status.created_at)}"]
    if status.request.channel:
        parts.append(f"in <#{status.request.channel}>")
    text = " ".join(parts) + f": _{escape(truncate(status.request.text, 500))}_"
    if status.approval is not None:
        text += f"\nApprovers: {mentions(status.approval.approvers)}. Expires {slack_date(status.approval.deadline)}."
    blocks: list[Block] = [section(text)]
    if public_url:
        link = f"<{dashboard_url(public_url, status.ticket_id)}|Open {label} in the dashboard>"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link)]))
    return SlackMessage(text=truncate(f"{label} needs a decision", FALLBACK_LIMIT), blocks=blocks)


def outcome_reply(status: TicketStatus) -> SlackMessage:
    """Posted in the ticket's thread when it ends, mentioning the requester."""
    text = f"{mention(status.request.requester)} {outcome_text(status)}"
    return SlackMessage(text=truncate(text, FALLBACK_LIMIT), blocks=[section(text)])


def outcome_text(status: TicketStatus) -> str:
    label = ticket_label(status.ticket_id)
    if status.outcome is None:
        return f"{label} is {status.stage.value.replace('_', ' ')}"
    return truncate(f"{label} {status.outcome.status.value}: {outcome_reason(status)}", FALLBACK_LIMIT)


def undo_reply(original: str, revert: str, status: TicketStatus | None) -> str:
    """What the person who clicked Undo hears once the revert ticket `revert` has a verdict (None: not yet)."""
    if status is None or (status.outcome is None and not status.pending_approval):
        return f"{revert} was filed to revert {original}; it is still being checked, and its message follows here."
    outcome = status.outcome
    if outcome is None:
        approval = status.approval
        needed = words.count(approval.required_approvals if approval else 0, "approval")
        approvers = f" from {mentions(approval.approvers)}" if approval else ""
        return f":leftwards_arrow_with_hook: {revert} will revert {original}; it needs {needed}{approvers}."
    if outcome.status is OutcomeStatus.DONE:
        rows = words.count(outcome.execution.rows_changed, "row") if outcome.execution else "its rows"
        return f":leftwards_arrow_with_hook: {revert} reverted {original}: {rows} put back."
    return f":no_entry_sign: {revert} will not revert {original}: {escape(outcome.reason)}"


def fallback(status: TicketStatus, state: str) -> str:
    return truncate(f"{ticket_label(status.ticket_id)} {state}: {escape(status.request.text)}", FALLBACK_LIMIT)


def reject_modal(status: TicketStatus, metadata: RejectModalMetadata) -> View:
    """Asks for the reason; its submission sends the `reject` signal."""
    label = ticket_label(status.ticket_id)
    summary = escape(status.plan.summary) if status.plan else escape(status.request.text)
    return View(
        type="modal",
        callback_id=REJECT_MODAL_CALLBACK_ID,
        title=PlainTextObject(text=truncate(f"Reject {label}", 24)),
        submit=PlainTextObject(text="Reject"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=metadata.encode(),
        blocks=[
            section(f"*{label}:* {summary}"),
            InputBlock(
                block_id=REASON_BLOCK_ID,
                label=PlainTextObject(text="Why are you rejecting it?"),
                element=PlainTextInputElement(
                    action_id=REASON_INPUT_ACTION_ID, multiline=True, min_length=1, max_length=MAX_REASON
                ),
            ),
            InputBlock(
                block_id=REPLAN_BLOCK_ID,
                optional=True,
                label=PlainTextObject(text="Then"),
                element=CheckboxesElement(
                    action_id=REPLAN_INPUT_ACTION_ID,
                    options=[
                        Option(
                            value=REPLAN_OPTION,
                            text=PlainTextObject(text="Ask for a new plan, with my reason as feedback"),
                            description=PlainTextObject(text="Unticked, the ticket ends as rejected."),
                        )
                    ],
                ),
            ),
        ],
    )


def pending_reply(tickets: Sequence[TicketRow], public_url: str | None = None) -> SlackMessage:
    """`/agent-ticket pending`: the tickets waiting for approval, newest first, with links."""
    if not tickets:
        return SlackMessage(text="No tickets are waiting for approval.")
    known_risks = {risk.value for risk in Risk}
    lines = []
    for ticket in tickets[:MAX_LIST_ITEMS]:
        label = ticket_label(ticket.ticket_id)
        if public_url:
            label = f"<{dashboard_url(public_url, ticket.ticket_id)}|{label}>"
        risk_part = f" {RISK_EMOJI[Risk(ticket.risk)]}" if ticket.risk in known_risks else ""
        lines.append(f"• *{label}*{risk_part} {escape(truncate(ticket.text, 120))} — {mention(ticket.requester)}")
    more = len(tickets) - MAX_LIST_ITEMS
    title = f"*{len(tickets)} ticket{'s' if len(tickets) != 1 else ''} waiting for approval*"
    body = "\n".join([title, *lines, *([f"… and {more} more"] if more > 0 else [])])
    return SlackMessage(text=f"{len(tickets)} ticket(s) waiting for approval", blocks=[section(body)])
