"""Record the workflow histories that `tests/workflows/test_replay.py` replays in CI.

Each scenario runs the real `TicketWorkflow` with scripted activities on the dev server (the
time-skipping test server for waits of days) and saves its history as
`tests/histories/<name>.json`. A replay of those files against changed workflow code fails
when the change would break tickets already running, so record again (and keep the old
files) whenever the workflow gains a new path; see docs/contributing.md.

    .venv/bin/python -m scripts.record_histories [--only NAME ...] [--label LABEL] [--overwrite] [--indexed]

Existing files are never overwritten unless asked: histories of tickets that may still be
running must stay. `--label check-quota` writes `<name>.check-quota.json` beside them.

Histories are recorded without payload encryption, so a reviewer can read them and replaying
them needs no key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.models import (
    ApprovalSettings,
    Decision,
    DecisionSource,
    OutcomeStatus,
    RevertOf,
    Risk,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
)
from core.names import QUERY_STATUS, SIGNAL_APPROVE, SIGNAL_REJECT, WORKFLOW_NAME, workflow_id_for
from core.search_attributes import ensure_registered, start_attributes
from service.temporal import temporal_cli_path, temporal_test_server_path
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import build_workers
from workflows.ticket import ROUNDS_PER_RUN

HISTORIES_DIR = Path(__file__).resolve().parents[1] / "tests" / "histories"
TASK_QUEUE = "record-histories"
APPROVERS = ["alice", "bob", "carol"]
LABEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")

Handle = WorkflowHandle[object, TicketOutcome]
Drive = Callable[[Handle], Awaitable[None]]


async def _no_input(handle: Handle) -> None:
    """The ticket needs nobody: it runs to its end on its own."""


async def _awaiting_approval(handle: Handle, answered: str | None = None) -> TicketStatus:
    """The status once an approval request other than `answered` is pending."""
    for _ in range(400):
        status = await handle.query(QUERY_STATUS, result_type=TicketStatus)
        if status.stage is Stage.AWAITING_APPROVAL and status.approval and status.approval.request_id != answered:
            return status
        if status.outcome is not None:
            raise RuntimeError(f"{handle.id} ended ({status.outcome.status}) before asking for approval")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{handle.id} never reached awaiting approval")


def _decision(status: TicketStatus, decider: str, *, approve: bool = True, **changes: str) -> Decision:
    assert status.approval is not None
    return status.approval.decision(decider, DecisionSource.SLACK, approve=approve).model_copy(update=changes)


def _signals(*deciders: tuple[str, bool, dict[str, str]]) -> Drive:
    """Wait for the approval request, then send one signal per (decider, approve, changes)."""

    async def drive(handle: Handle) -> None:
        status = await _awaiting_approval(handle)
        for decider, approve, changes in deciders:
            signal = SIGNAL_APPROVE if approve else SIGNAL_REJECT
            await handle.signal(signal, _decision(status, decider, approve=approve, **changes))

    return drive


async def _let_it_expire(handle: Handle) -> None:
    """Nobody decides; waiting on the result lets the test server skip the days to the deadline."""
    await _awaiting_approval(handle)


async def _cancel_while_waiting(handle: Handle) -> None:
    """An operator cancels the ticket through Temporal while it waits for approval."""
    await _awaiting_approval(handle)
    await handle.cancel()


async def _review_rounds_past_continue_as_new(handle: Handle) -> None:
    """Reject with feedback until the workflow has continued as new once, then approve the next plan."""
    answered: str | None = None
    for number in range(ROUNDS_PER_RUN + 1):
        status = await _awaiting_approval(handle, answered)
        assert status.approval is not None
        answered = status.approval.request_id
        feedback = _decision(status, "alice", approve=False, comment=f"round {number}: only the EU workspace")
        await handle.signal(SIGNAL_REJECT, feedback.model_copy(update={"replan": True}))
    await handle.signal(SIGNAL_APPROVE, _decision(await _awaiting_approval(handle, answered), "bob"))


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: OutcomeStatus
    fakes: Callable[[], ScriptedActivities]
    drive: Drive = _no_input
    requester: str = "dave"
    approval: dict[str, object] = field(default_factory=dict)
    reverts: RevertOf | None = None
    # Waits of days need the time-skipping server; the rest run on the dev server, which also
    # answers a query sent right after a signal (the test server sometimes loses that race).
    skips_time: bool = False

    def request(self) -> TicketRequest:
        return TicketRequest(
            text="upgrade acme-corp to the pro plan",
            requester=self.requester,
            approval=ApprovalSettings(approvers=APPROVERS, **self.approval),  # type: ignore[arg-type]
            reverts=self.reverts,
        )


SCENARIOS = [
    Scenario("auto_executed_low_risk", OutcomeStatus.DONE, lambda: ScriptedActivities(risk=Risk.LOW)),
    Scenario(
        "approved_medium_one_approver",
        OutcomeStatus.DONE,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1),
        _signals(("bob", True, {})),
    ),
    Scenario(
        "approved_high_two_approvers",
        OutcomeStatus.DONE,
        lambda: ScriptedActivities(risk=Risk.HIGH, required_approvals=2),
        _signals(("alice", True, {}), ("bob", True, {})),
    ),
    Scenario(
        "ignored_decisions_then_approved",
        OutcomeStatus.DONE,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1),
        _signals(
            ("alice", True, {}),  # the requester
            ("mallory", True, {}),  # not an approver
            ("bob", True, {"plan_hash": "0" * 16}),  # approves another plan
            ("bob", True, {}),
        ),
        requester="alice",
    ),
    Scenario(
        "rejected",
        OutcomeStatus.REJECTED,
        lambda: ScriptedActivities(risk=Risk.HIGH, required_approvals=2),
        _signals(("alice", True, {}), ("bob", False, {"comment": "not during the freeze"})),
    ),
    Scenario(
        "replanned_with_feedback",
        OutcomeStatus.DONE,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1),
        _review_rounds_past_continue_as_new,
    ),
    Scenario(
        "expired_after_reminder",
        OutcomeStatus.EXPIRED,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1),
        _let_it_expire,
        skips_time=True,
        approval={"timeout_seconds": 3 * 24 * 3600, "reminder_before_seconds": 24 * 3600, "escalation_channel": "C1"},
    ),
    Scenario("blocked_by_policy", OutcomeStatus.BLOCKED, lambda: ScriptedActivities(risk=Risk.BLOCKED)),
    Scenario(
        "cancelled_while_waiting",
        OutcomeStatus.CANCELLED,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1),
        _cancel_while_waiting,
    ),
    Scenario(
        "blocked_too_few_approvers",
        OutcomeStatus.BLOCKED,
        lambda: ScriptedActivities(risk=Risk.HIGH, required_approvals=2, approvers=["alice"]),
    ),
    Scenario(
        "reverted_with_approval",
        OutcomeStatus.DONE,
        lambda: ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1, original_requester="alice"),
        _signals(("alice", True, {}), ("bob", True, {})),  # the original's requester is ignored
        reverts=RevertOf(workflow_id=workflow_id_for("T-history-original")),
    ),
    Scenario(
        "failed_planner_error",
        OutcomeStatus.FAILED,
        lambda: ScriptedActivities(plan_error="the model refused: policy"),
    ),
]


async def record(
    env: WorkflowEnvironment, scenario: Scenario, label: str = "", indexed: bool = False
) -> dict[str, str]:
    """Run one scenario to its end, check the outcome is the intended one, and return its histories.

    Keyed by file name without `.json`: `<name>[.<label>]`, and `.run1`, `.run2`, ... added for
    a ticket that continued as new. `indexed`: started with the ticket search attributes, as
    `TicketService` starts tickets on a namespace that has them (the workflow then upserts them).
    """
    fakes = scenario.fakes()
    queue = f"{TASK_QUEUE}-{scenario.name.replace('_', '-')}"  # a queue per scenario: no stale sticky workers
    async with AsyncExitStack() as stack:
        for worker in build_workers(env.client, fakes.activity_set(), task_queue=queue):
            await stack.enter_async_context(worker)
        handle: Handle = await env.client.start_workflow(
            WORKFLOW_NAME,
            scenario.request(),
            id=workflow_id_for(f"history-{scenario.name.replace('_', '-')}"),
            task_queue=queue,
            result_type=TicketOutcome,
            search_attributes=start_attributes(scenario.requester, Stage.RECEIVED.value) if indexed else None,
        )
        await scenario.drive(handle)
        outcome = await handle.result()
        if outcome.status is not scenario.expected:
            raise RuntimeError(f"{scenario.name}: ended {outcome.status.value}, expected {scenario.expected.value}")
        runs = await _run_histories(env, handle.id, handle.first_execution_run_id)
    base = f"{scenario.name}.{label}" if label else scenario.name
    if len(runs) == 1:
        return {base: runs[0]}
    return {f"{base}.run{number}": text for number, text in enumerate(runs, start=1)}


async def _run_histories(env: WorkflowEnvironment, workflow_id: str, run_id: str | None) -> list[str]:
    """The history of each run, following the continue-as-new chain from the first."""
    runs = []
    while run_id:
        history = (await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).to_json_dict()
        runs.append(json.dumps(history, indent=2) + "\n")
        last = history["events"][-1]
        run_id = last.get("workflowExecutionContinuedAsNewEventAttributes", {}).get("newExecutionRunId")
    return runs


async def record_all(scenarios: list[Scenario], label: str = "", indexed: bool = False) -> dict[str, str]:
    """Each scenario's history as JSON text, keyed by file name without `.json`."""
    histories: dict[str, str] = {}
    for skips_time in (False, True):
        chosen = [scenario for scenario in scenarios if scenario.skips_time is skips_time]
        if chosen and indexed and skips_time:
            # The time-skipping test server has no search attributes to register.
            print(f"skipped with --indexed: {', '.join(scenario.name for scenario in chosen)}")
            continue
        if not chosen:
            continue
        async with await _environment(skips_time) as env:
            if indexed and not await ensure_registered(env.client, env.client.namespace):
                raise RuntimeError("the ticket search attributes could not be registered on the recording server")
            for scenario in chosen:
                histories.update(await record(env, scenario, label, indexed))
                print(f"recorded {scenario.name} ({scenario.expected.value})")
    return histories


async def _environment(skips_time: bool) -> WorkflowEnvironment:
    if skips_time:
        return await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter, test_server_existing_path=str(temporal_test_server_path())
        )
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, dev_server_existing_path=str(temporal_cli_path())
    )


def main(out_dir: Path, only: list[str], label: str = "", overwrite: bool = False, indexed: bool = False) -> None:
    unknown = set(only) - {scenario.name for scenario in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if label and not LABEL_PATTERN.match(label):
        raise SystemExit("--label: lower-case letters, digits and '-' only")
    chosen = [scenario for scenario in SCENARIOS if not only or scenario.name in only]
    histories = asyncio.run(record_all(chosen, label, indexed))
    paths = {out_dir / f"{name}.json": text for name, text in histories.items()}
    existing = sorted(str(path) for path in paths if path.exists())
    if existing and not overwrite:
        raise SystemExit(
            "not overwriting recorded histories (tickets may still be running on them): "
            + ", ".join(existing)
            + "\nuse --label to record beside them, or --overwrite once they are no longer needed"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in paths.items():
        path.write_text(text)
    print(f"wrote {len(paths)} histories to {out_dir}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HISTORIES_DIR, help="directory for the JSON files")
    parser.add_argument("--only", nargs="*", default=[], help="record only these scenarios")
    parser.add_argument("--label", default="", help="add to file names, to keep older histories beside the new")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files of the same name")
    parser.add_argument(
        "--indexed", action="store_true", help="start tickets with the search attributes, as on a namespace with them"
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    main(arguments.out, arguments.only, arguments.label, arguments.overwrite, arguments.indexed)
    # The SDK's Rust bridge can abort the interpreter at exit (sdk-python #300); the work is done.
    sys.stdout.flush()
    os._exit(0)
