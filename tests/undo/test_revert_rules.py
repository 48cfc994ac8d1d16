"""The rules a revert keeps, on SQLite and PostgreSQL: conflicts, exactly once, the window, approvals.

One pipeline per backend serves the module; each test makes its own probe rows, so tests share
nothing but the workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, update
from temporalio.testing import WorkflowEnvironment

from core.approval import REVERTED_REQUESTER
from core.bootstrap import Databases
from core.models import (
    Assignment,
    DecisionSource,
    DeleteOperation,
    Filter,
    FilterOperator,
    Operation,
    OutcomeStatus,
    Plan,
    RevertOf,
    Risk,
    RowConflict,
    Stage,
    TicketRequest,
    TicketStatus,
    UpdateOperation,
)
from core.names import workflow_id_for
from core.policy import load_policy_file
from service.tickets import CannotRevert
from tests.pipeline import REQUESTER, Pipeline, running_pipeline
from tests.undo.support import (
    BACKENDS,
    add_probe,
    age_execution,
    approve_all,
    finished,
    ledger_row,
    probes,
    proposed,
    revert_done,
    rows_of,
    run_done,
    settled,
    undo_pipeline,
    unique_label,
)

EIGHT_DAYS = timedelta(days=8)


@pytest.fixture(scope="module", params=BACKENDS)
async def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, local_env: WorkflowEnvironment
) -> AsyncIterator[Pipeline]:
    async with undo_pipeline(request.param, tmp_path_factory.mktemp("undo-rules"), local_env.client) as running:
        yield running


def _update(probe: int, **values: object) -> UpdateOperation:
    return UpdateOperation(
        table=probes.name,
        values=[Assignment(column=column, value=value) for column, value in values.items()],  # type: ignore[arg-type]
        filters=[Filter(column="id", op=FilterOperator.EQ, value=probe)],
    )


def _delete(probe: int) -> DeleteOperation:
    return DeleteOperation(table=probes.name, filters=[Filter(column="id", op=FilterOperator.EQ, value=probe)])


def _plan(*operations: Operation) -> Plan:
    return Plan(summary="change probes", operations=list(operations))


async def _probe(pipeline: Pipeline, probe: int) -> dict[str, Any] | None:
    return next((row for row in await rows_of(pipeline.databases.target_engine, probes) if row["id"] == probe), None)


async def _row(pipeline: Pipeline, probe: int) -> dict[str, Any]:
    row = await _probe(pipeline, probe)
    assert row is not None, f"probe {probe} is gone"
    return row


async def _value(pipeline: Pipeline, probe: int, column: str) -> Any:
    return (await _row(pipeline, probe))[column]


async def _blocked(pipeline: Pipeline, ticket: str) -> TicketStatus:
    status = await settled(pipeline, ticket)
    assert status.outcome is not None and status.outcome.status is OutcomeStatus.BLOCKED, status.outcome
    return status


# ---------------------------------------------------------------- conflicts


async def test_a_row_changed_since_blocks_the_revert_until_its_overwrite_is_approved_by_two(
    pipeline: Pipeline,
) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("conflict"))
    before = await _row(pipeline, probe)
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note="by the ticket"))))
    after = await _row(pipeline, probe)
    async with engine.begin() as connection:  # someone else, after the ticket ran
        await connection.execute(update(probes).where(probes.c.id == probe).values(note="by someone else", ratio=7.5))

    refused = await pipeline.revert(original, REQUESTER)
    status = await _blocked(pipeline, refused.short_id)
    assert status.outcome is not None and "changed after the original ran" in status.outcome.reason
    assert "--include-conflicts" in status.outcome.reason
    assert status.report is not None and status.report.revert is not None
    (conflict,) = status.report.revert.conflicts
    assert isinstance(conflict, RowConflict)
    assert (conflict.table, conflict.key) == (probes.name, str(probe))
    assert conflict.before is not None and conflict.before["note"] == before["note"]
    assert conflict.after is not None and conflict.after["note"] == "by the ticket"
    assert conflict.now is not None and (conflict.now["note"], conflict.now["ratio"]) == ("by someone else", 7.5)
    assert conflict.after["ratio"] == after["ratio"]
    assert any(finding.rule == "revert_conflict" and finding.risk is Risk.BLOCKED for finding in status.report.findings)
    assert await _value(pipeline, probe, "ratio") == 7.5
    ledger = await ledger_row(engine, workflow_id_for(original))
    assert ledger is not None and ledger["reverted_by"] is None  # a blocked revert claims nothing

    overwrite = await pipeline.revert(original, REQUESTER, include_conflicts=True)
    status = await settled(pipeline, overwrite.short_id)
    assert status.stage is Stage.AWAITING_APPROVAL, status.outcome
    assert status.report is not None and status.report.revert is not None
    assert status.report.risk is Risk.HIGH and status.report.required_approvals == 2
    assert status.report.revert.include_conflicts and len(status.report.revert.conflicts) == 1
    assert status.approval is not None
    first = await pipeline.service.decide(overwrite.short_id, status.approval.decision("alice", DecisionSource.CLI))
    assert first is not None and first.accepted
    assert (await pipeline.service.status(overwrite.short_id)).outcome is None  # one of two runs nothing
    assert await _value(pipeline, probe, "ratio") == 7.5
    await pipeline.service.decide(overwrite.short_id, status.approval.decision("bob", DecisionSource.CLI))
    outcome = await pipeline.service.result(overwrite.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    # The column the original changed is put back over the later change, as approved; the column
    # only the other writer changed keeps its value (a revert sets only what the original set).
    assert await _probe(pipeline, probe) == {**before, "ratio": 7.5}


async def test_rows_deleted_or_inserted_again_since_are_conflicts(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    updated = await add_probe(engine, unique_label("gone"))
    deleted = await add_probe(engine, unique_label("back"))
    original_deleted = await _row(pipeline, deleted)
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(updated, note="x"), _delete(deleted))))
    async with engine.begin() as connection:  # someone deletes the one and puts a row back under the other's key
        await connection.execute(delete(probes).where(probes.c.id == updated))
        await connection.execute(insert(probes).values(id=deleted, label=unique_label("squatter"), note="not mine"))

    refused = await pipeline.revert(original, REQUESTER)
    status = await _blocked(pipeline, refused.short_id)
    assert status.report is not None and status.report.revert is not None
    conflicts = {conflict.key: conflict for conflict in status.report.revert.conflicts}
    assert set(conflicts) == {str(updated), str(deleted)}
    gone, back = conflicts[str(updated)], conflicts[str(deleted)]
    assert gone.after is not None and gone.after["note"] == "x" and gone.now is None
    assert back.before is not None and back.before["label"] == original_deleted["label"]
    assert back.after is None and back.now is not None and back.now["note"] == "not mine"
    # Overwriting cannot put a row back under a key someone else's row holds now: the dry run
    # shows the database's refusal, and nothing is written.
    overwrite = await pipeline.revert(original, REQUESTER, include_conflicts=True)
    status = await _blocked(pipeline, overwrite.short_id)
    assert status.outcome is not None and "a row with that value already exists" in status.outcome.reason
    assert await _probe(pipeline, updated) is None
    assert await _value(pipeline, deleted, "note") == "not mine"
    ledger = await ledger_row(engine, workflow_id_for(original))
    assert ledger is not None and ledger["reverted_by"] is None


# ---------------------------------------------------------------- exactly once


def revert_request(pipeline: Pipeline, original: str) -> TicketRequest:
    """A revert started straight on Temporal, past the front doors' check: the workflow judges it alone."""
    return pipeline.request(f"revert T-{original}", REQUESTER).model_copy(
        update={"reverts": RevertOf(workflow_id=workflow_id_for(original))}
    )


async def test_a_second_revert_is_refused_and_two_racing_reverts_run_once(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("race"))
    before = await _row(pipeline, probe)
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, amount="-1.5", flag=False))))

    racers = [await pipeline.revert(original, REQUESTER) for _ in range(2)]
    for racer in racers:  # both judged and waiting before either runs
        assert (await settled(pipeline, racer.short_id)).stage is Stage.AWAITING_APPROVAL
    await asyncio.gather(*(approve_all(pipeline, racer.short_id) for racer in racers))
    outcomes = [await pipeline.service.result(racer.short_id) for racer in racers]

    statuses = sorted(outcome.status.value for outcome in outcomes)
    assert statuses == ["blocked", "done"], [outcome.reason for outcome in outcomes]
    winner = racers[[outcome.status for outcome in outcomes].index(OutcomeStatus.DONE)]
    loser = outcomes[[outcome.status for outcome in outcomes].index(OutcomeStatus.BLOCKED)]
    assert f"already reverted by {winner.label}" in loser.reason
    assert await _probe(pipeline, probe) == before
    ledger = await ledger_row(engine, workflow_id_for(original))
    assert ledger is not None and ledger["reverted_by"] == winner.workflow_id
    assert [await ledger_row(engine, racer.workflow_id) is not None for racer in racers] == [
        racer is winner for racer in racers
    ]

    with pytest.raises(CannotRevert, match=f"T-{original} was already reverted by {winner.label}"):
        await pipeline.revert(original, REQUESTER)  # the front doors' check, from the original's record
    again = await pipeline.service.start(revert_request(pipeline, original))  # any Temporal client
    status = await _blocked(pipeline, again.short_id)
    assert status.outcome is not None
    assert status.outcome.reason == f"T-{original} was already reverted by {winner.label}"
    assert status.plan is None  # refused before any plan was made


async def test_a_revert_of_a_revert_restores_the_change(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("redo"))
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note=None, due_on="2030-12-31"))))
    changed = await _row(pipeline, probe)
    first, _ = await revert_done(pipeline, original)
    assert await _value(pipeline, probe, "due_on") != changed["due_on"]

    second, _ = await revert_done(pipeline, first)
    assert await _probe(pipeline, probe) == changed
    first_ledger = await ledger_row(engine, workflow_id_for(first))
    assert first_ledger is not None and first_ledger["reverts"] == workflow_id_for(original)
    assert first_ledger["reverted_by"] == workflow_id_for(second)
    with pytest.raises(CannotRevert, match=f"already reverted by T-{first}"):
        await pipeline.revert(original, REQUESTER)  # the original stays reverted by the first
    again = await pipeline.service.start(revert_request(pipeline, original))
    status = await _blocked(pipeline, again.short_id)
    assert status.outcome is not None and f"already reverted by T-{first}" in status.outcome.reason


# ---------------------------------------------------------------- the window


async def test_a_revert_after_the_window_is_refused(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("late"))
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note="kept"))))
    await age_execution(engine, workflow_id_for(original), EIGHT_DAYS)

    late = await pipeline.revert(original, REQUESTER)
    status = await _blocked(pipeline, late.short_id)
    assert status.outcome is not None and "ran more than 7 days ago" in status.outcome.reason
    assert await _value(pipeline, probe, "note") == "kept"


async def test_expired_images_are_purged_and_the_ledger_row_stays(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("purge"))
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note="old change"))))
    await age_execution(engine, workflow_id_for(original), EIGHT_DAYS)
    assert (await ledger_row(engine, workflow_id_for(original)) or {})["images"]

    # A worker process of its own purges on its first execution (then every PURGE_EVERY_SECONDS).
    settings = pipeline.settings.model_copy(
        update={"temporal_task_queue": f"{pipeline.settings.temporal_task_queue}-b"}
    )
    databases = Databases.open(settings)
    try:
        async with running_pipeline(pipeline.client, settings, databases) as other:
            other_probe = await add_probe(engine, unique_label("purger"))
            await run_done(other, proposed(other, _plan(_update(other_probe, note="new change"))))
    finally:
        await databases.close()

    ledger = await ledger_row(engine, workflow_id_for(original))
    assert ledger is not None and ledger["images"] is None  # forgotten, but the proof it ran once stays
    assert ledger["plan_hash"] and ledger["result"]
    late = await pipeline.revert(original, REQUESTER)
    status = await _blocked(pipeline, late.short_id)
    assert status.outcome is not None and "has no change to revert" in status.outcome.reason
    assert await _value(pipeline, probe, "note") == "old change"


# ---------------------------------------------------------------- approvals


async def test_the_original_requester_may_ask_for_the_revert_but_not_approve_it(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("asker"))
    before = await _row(pipeline, probe)
    original, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note="alice's")), requester="alice"))

    revert = await pipeline.revert(original, "carol")
    status = await settled(pipeline, revert.short_id)
    assert status.approval is not None and status.approval.excluded == ["alice"]
    ignored = await pipeline.service.decide(revert.short_id, status.approval.decision("alice", DecisionSource.SLACK))
    assert ignored is not None and not ignored.accepted and ignored.reason == REVERTED_REQUESTER
    counted = await pipeline.service.decide(revert.short_id, status.approval.decision("bob", DecisionSource.SLACK))
    assert counted is not None and counted.accepted
    outcome = await pipeline.service.result(revert.short_id)
    assert outcome.status is OutcomeStatus.DONE and outcome.decided_by == ["bob"], outcome
    assert await _probe(pipeline, probe) == before

    # Asking is allowed: alice reverts her own next change, and someone else approves it.
    again, _ = await run_done(pipeline, proposed(pipeline, _plan(_update(probe, note="alice's again")), "alice"))
    own = await pipeline.revert(again, "alice")
    outcome = await finished(pipeline, own.short_id)
    assert outcome.status is OutcomeStatus.DONE and "alice" not in outcome.decided_by, outcome
    assert await _probe(pipeline, probe) == before


async def test_a_revert_needs_as_many_approvals_as_the_original_had(pipeline: Pipeline) -> None:
    engine = pipeline.databases.target_engine
    probe = await add_probe(engine, unique_label("quorum"))
    before = await _row(pipeline, probe)
    original, done = await run_done(pipeline, proposed(pipeline, _plan(_delete(probe))))
    assert sorted(done.decided_by) == ["alice", "bob"]  # a delete is high risk: two approvals

    revert = await pipeline.revert(original, REQUESTER)
    status = await settled(pipeline, revert.short_id)
    report = status.report
    assert report is not None and report.revert is not None and status.approval is not None
    policy = load_policy_file(pipeline.settings.policy_file)
    assert policy.approvals_for(report.risk) == 1, report  # the re-insert alone would need one
    assert report.revert.original_approvals == 2 and report.required_approvals == 2
    assert status.approval.required_approvals == 2
    await pipeline.service.decide(revert.short_id, status.approval.decision("carol", DecisionSource.CLI))
    waiting = await pipeline.service.status(revert.short_id)
    assert waiting.stage is Stage.AWAITING_APPROVAL and waiting.approved_by == ["carol"]
    assert await _probe(pipeline, probe) is None
    await pipeline.service.decide(revert.short_id, status.approval.decision("alice", DecisionSource.CLI))
    outcome = await pipeline.service.result(revert.short_id)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert await _probe(pipeline, probe) == before
