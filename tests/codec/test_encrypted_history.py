"""A real ticket on the dev server with encryption on: Temporal holds only ciphertext.

The worker and the bot's client share the project's converter, so they read everything; a
client without the key sees no ticket text, plan or error message in the history, and the
bot's codec endpoint opens the payloads for the token holder: for a plain HTTP caller, and
for the `temporal` CLI, which speaks the same codec protocol as the Web UI.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bot.app import create_app
from bot.codec_routes import build_codec_routes
from bot.context import BotContext
from core.bootstrap import Databases
from core.models import OutcomeStatus, Risk, TicketOutcome, TicketRequest, TicketStatus
from core.names import QUERY_STATUS
from core.settings import Settings, load_settings
from service.temporal import connect, temporal_cli_path
from service.tickets import TicketService
from tests.codec.keys import K1, TOKEN, keys_setting
from tests.workflows.fake_activities import UPGRADE_PLAN, ScriptedActivities
from worker.build import build_workers

TICKET_TEXT = "upgrade zanzibar-holdings to the pro plan, contact jane.roe@example.com"
PLANNER_SECRET = "account 88-1234-5678 is overdrawn"


@pytest.fixture
def settings(tmp_path: Path, local_env: WorkflowEnvironment) -> Settings:
    """Like the suite's settings, on the session's dev server, with payload encryption on."""
    return load_settings(
        data_dir=tmp_path / "data",
        temporal_address=local_env.client.service_client.config.target_host,
        payload_codec_keys=keys_setting(K1),
        codec_auth_token=TOKEN,
        openai_api_key=None,
        slack_bot_token=None,
        slack_signing_secret=None,
        approvers=["alice", "bob", "carol"],
        _env_file=None,
    )


@pytest.fixture
async def encrypted_client(settings: Settings) -> AsyncIterator[Client]:
    yield await connect(settings)


@asynccontextmanager
async def finished_ticket(client: Client, fakes: ScriptedActivities) -> AsyncIterator[tuple[str, TicketOutcome]]:
    """Start a ticket through the ticket service and run it to its end; workers stay up for queries."""
    queue = f"codec-{uuid.uuid4().hex[:10]}"
    service = TicketService(client, task_queue=queue)
    async with AsyncExitStack() as stack:
        for worker in build_workers(client, fakes.activity_set(), task_queue=queue):
            await stack.enter_async_context(worker)
        started = await service.start(TicketRequest(text=TICKET_TEXT, requester="dave"))
        yield started.workflow_id, await service.handle(started.short_id).result()


async def raw_history(env: WorkflowEnvironment, workflow_id: str) -> bytes:
    """Every event as Temporal stores it, fetched by a client that has no key."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_history_holds_no_ticket_text_or_plan(
    local_env: WorkflowEnvironment, encrypted_client: Client, settings: Settings, databases: Databases
) -> None:
    async with finished_ticket(encrypted_client, ScriptedActivities(risk=Risk.LOW)) as (workflow_id, outcome):
        status = await encrypted_client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=TicketStatus)
        with pytest.raises(Exception, match="binary/encrypted"):  # no key, no status
            await local_env.client.get_workflow_handle(workflow_id).query(QUERY_STATUS, result_type=TicketStatus)
    assert outcome.status is OutcomeStatus.DONE
    assert status.request.text == TICKET_TEXT  # the bot's client reads the status as usual
    assert status.plan is not None and status.plan.summary == UPGRADE_PLAN.summary

    stored = await raw_history(local_env, workflow_id)
    for secret in (TICKET_TEXT, "zanzibar", "jane.roe@example.com", UPGRADE_PLAN.summary, "subscriptions"):
        assert secret.encode() not in stored, f"{secret!r} is readable in Temporal's history"
    assert stored.count(b"binary/encrypted") >= 10

    # The Web UI's view: the workflow's input, sent to the bot's codec endpoint.
    started_event = (await local_env.client.get_workflow_handle(workflow_id).fetch_history()).events[0]
    sealed_input = started_event.workflow_execution_started_event_attributes.input
    app = create_app(BotContext(settings, TicketService(encrypted_client), databases))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as http:
        refused = await http.post("/codec/decode", content=json_format.MessageToJson(sealed_input))
        opened = await http.post(
            "/codec/decode",
            content=json_format.MessageToJson(sealed_input),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert refused.status_code == 401
    assert opened.status_code == 200
    [request_payload] = json_format.Parse(opened.text, Payloads()).payloads
    assert TicketRequest.model_validate_json(request_payload.data).text == TICKET_TEXT


async def test_failure_messages_are_encrypted_too(local_env: WorkflowEnvironment, encrypted_client: Client) -> None:
    fakes = ScriptedActivities(plan_error=f"the model refused: {PLANNER_SECRET}")
    async with finished_ticket(encrypted_client, fakes) as (workflow_id, outcome):
        pass
    assert outcome.status is OutcomeStatus.FAILED
    assert PLANNER_SECRET in outcome.reason  # the workflow itself still sees the real message
    stored = await raw_history(local_env, workflow_id)
    assert PLANNER_SECRET.encode() not in stored
    assert TICKET_TEXT.encode() not in stored


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app on a real port of 127.0.0.1, for callers that are separate processes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_temporal_cli_reads_the_history_through_the_codec_endpoint(
    local_env: WorkflowEnvironment, encrypted_client: Client, settings: Settings
) -> None:
    async with finished_ticket(encrypted_client, ScriptedActivities(risk=Risk.LOW)) as (workflow_id, outcome):
        assert outcome.status is OutcomeStatus.DONE
    address = local_env.client.service_client.config.target_host
    async with serving(Starlette(routes=build_codec_routes(settings))) as base_url:
        cli = await asyncio.create_subprocess_exec(
            str(temporal_cli_path()),
            *("workflow", "show", "--address", address, "--workflow-id", workflow_id, "--output", "json"),
            *("--codec-endpoint", f"{base_url}/codec", "--codec-auth", f"Bearer {TOKEN}"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        shown, errors = await asyncio.wait_for(cli.communicate(), timeout=30)
    assert cli.returncode == 0, errors.decode()
    started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
    [payload] = started["input"]["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert TicketRequest.model_validate_json(base64.b64decode(payload["data"])).text == TICKET_TEXT
