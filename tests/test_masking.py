"""Masking private values: the pure functions any reader of a ticket's status can apply."""

from __future__ import annotations

from datetime import UTC, datetime

from core.masking import MASK, mask_status
from core.models import (
    ExecutionResult,
    OperationImpact,
    OperationResult,
    OutcomeStatus,
    Risk,
    RowChange,
    SafetyReport,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _status(decided_by: list[str]) -> TicketStatus:
    report = SafetyReport(
        risk=Risk.MEDIUM,
        impacts=[
            OperationImpact(
                operation_index=0,
                kind="update",
                table="users",
                rows_affected=1,
                row_keys=["2"],
                preview=[
                    RowChange(
                        key="2", before={"id": 2, "email": "carol@a.example"}, after={"id": 2, "email": "c@b.example"}
                    )
                ],
            )
        ],
        private_columns={"users": ["email"]},
    )
    rows = [{"id": 2, "email": "carol@a.example", "name": "Carol"}]
    result = ExecutionResult(
        plan_hash="x",
        executed_at=NOW,
        results=[OperationResult(operation_index=1, kind="select", table="users", rows_affected=1, rows=rows)],
    )
    outcome = TicketOutcome(
        status=OutcomeStatus.DONE, reason="done", execution=result, decided_by=decided_by, finished_at=NOW
    )
    request = TicketRequest(text="t", requester="dave")
    return TicketStatus(
        ticket_id="t",
        workflow_id="ticket-t",
        request=request,
        stage=Stage.FINISHED,
        created_at=NOW,
        updated_at=NOW,
        report=report,
        outcome=outcome,
    )


def test_values_read_by_an_unapproved_plan_are_masked() -> None:
    masked = mask_status(_status(decided_by=[]))
    assert masked.report is not None and masked.outcome is not None and masked.outcome.execution is not None
    [change] = masked.report.impacts[0].preview
    assert change.before == {"id": 2, "email": MASK} and change.after == {"id": 2, "email": "c@b.example"}
    assert masked.outcome.execution.results[0].rows == [{"id": 2, "email": MASK, "name": "Carol"}]


def test_values_read_by_an_approved_plan_are_shown_but_the_preview_stays_masked() -> None:
    original = _status(decided_by=["alice"])
    masked = mask_status(original)
    assert masked.outcome == original.outcome
    assert masked.report is not None and masked.report.impacts[0].preview[0].before == {"id": 2, "email": MASK}
