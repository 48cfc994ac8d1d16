"""Replaying recorded ticket histories against the current `TicketWorkflow`.

A workflow change that would make running tickets take a different path fails here, in CI,
instead of in production. The histories come from `scripts/record_histories.py`; the
procedure for changing the workflow safely is in docs/contributing.md.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from core.models import OutcomeStatus, TicketOutcome
from core.settings import load_settings
from service.temporal import data_converter
from tests.workflows.workflow_variants import TicketWorkflowWithNewStep, TicketWorkflowWithPatchedStep
from worker.build import WORKFLOW_RUNNER
from workflows.ticket import TicketWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
HISTORY_FILES = sorted(HISTORIES.glob("*.json"))
TEST_KEY = "k1:" + base64.b64encode(bytes(range(32))).decode()


def load_history(path: Path) -> WorkflowHistory:
    # Under a ticket's workflow id, as tickets run: the workflow refuses any other id.
    return WorkflowHistory.from_json(f"ticket-replay-{path.stem.replace('.', '-')}", path.read_text())


def project_converter(*, encrypted: bool) -> DataConverter:
    """The converter bot and worker would build; with encryption on, plaintext histories must still replay."""
    return data_converter(load_settings(_env_file=None, payload_codec_keys=TEST_KEY if encrypted else None))


def test_representative_histories_are_checked_in() -> None:
    """Every way a ticket can end is covered, so a change to any path meets a history."""
    assert len(HISTORY_FILES) >= 6, f"expected recorded histories in {HISTORIES}"
    outcomes, continued = set(), 0
    for path in HISTORY_FILES:
        last = json.loads(path.read_text())["events"][-1]
        if "workflowExecutionContinuedAsNewEventAttributes" in last:
            continued += 1
            continue
        assert "workflowExecutionCompletedEventAttributes" in last, f"{path.name} is not a finished run"
        payload = last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
        outcomes.add(TicketOutcome.model_validate_json(base64.b64decode(payload["data"])).status)
    assert outcomes == set(OutcomeStatus)
    assert continued >= 1, "no history of a ticket that continued as new (long review conversations)"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "codec-on"])
@pytest.mark.parametrize("path", HISTORY_FILES, ids=[path.stem for path in HISTORY_FILES])
async def test_history_replays_on_current_workflow(path: Path, encrypted: bool) -> None:
    replayer = Replayer(
        workflows=[TicketWorkflow],
        data_converter=project_converter(encrypted=encrypted),
        workflow_runner=WORKFLOW_RUNNER,
    )
    result = await replayer.replay_workflow(load_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[path.stem for path in HISTORY_FILES])
async def test_unguarded_change_breaks_replay(path: Path) -> None:
    """The guard itself: a change that would strand running tickets is caught by these histories."""
    replayer = Replayer(
        workflows=[TicketWorkflowWithNewStep], data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load_history(path))


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[path.stem for path in HISTORY_FILES])
async def test_patched_change_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[TicketWorkflowWithPatchedStep],
        data_converter=pydantic_data_converter,
        workflow_runner=WORKFLOW_RUNNER,
    )
    result = await replayer.replay_workflow(load_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
