"""The SDK's payload passes: left out when they can change nothing, run as the SDK runs them otherwise.

That a ticket runs end to end with them left out is what the rest of the suite shows; that an
encrypting worker still encrypts every payload with `install()` in place is
`tests/codec/test_encrypted_history.py` (a real ticket's history holds only ciphertext).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import uuid
from collections.abc import Sequence
from typing import Any

import temporalio.bridge.worker as bridge_worker
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    ExternalStorage,
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)
from temporalio.converter._extstore import StorageOperationMetrics
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.codec import EncryptionCodec
from tests.codec.keys import K1
from tests.worker.reference_workflow import DecisionWaiter
from worker import payload_passes
from worker.build import WORKFLOW_RUNNER

ENTRY_POINTS = ("decode_activation", "encode_completion")


class RecordingPass:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.metrics = StorageOperationMetrics(payload_count=3)

    async def __call__(self, *args: Any, **kwargs: Any) -> StorageOperationMetrics:
        self.calls.append((*args, kwargs))
        return self.metrics


class MemoryStorage(StorageDriver):
    """External storage as another client of the namespace might configure it: every payload stored here."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def name(self) -> str:
        return "memory"

    async def store(self, context: StorageDriverStoreContext, payloads: Sequence[Payload]) -> list[StorageDriverClaim]:
        claims = []
        for payload in payloads:
            key = uuid.uuid4().hex
            self.stored[key] = payload.SerializeToString()
            claims.append(StorageDriverClaim(claim_data={"key": key}))
        return claims

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return [Payload.FromString(self.stored[claim.claim_data["key"]]) for claim in claims]


async def test_the_passes_are_left_out_only_when_there_is_no_codec_and_no_external_storage() -> None:
    sdk_pass = RecordingPass()
    wrapped = payload_passes._skipping_idle_passes(sdk_pass, refuses_references=False)
    completion = WorkflowActivationCompletion(run_id="r")

    for plain in (DataConverter.default, pydantic_data_converter):
        metrics = await wrapped(completion, plain, encode_headers=False, storage_concurrency_limit=1)
        assert metrics.payload_count == 0
    assert sdk_pass.calls == []

    encrypting = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec([K1]))
    metrics = await wrapped(completion, encrypting, encode_headers=True, storage_concurrency_limit=4)
    assert metrics is sdk_pass.metrics
    assert sdk_pass.calls == [(completion, encrypting, {"encode_headers": True, "storage_concurrency_limit": 4})]


async def test_an_activation_that_may_hold_a_stored_reference_is_walked_as_before() -> None:
    sdk_pass = RecordingPass()
    wrapped = payload_passes._skipping_idle_passes(sdk_pass, refuses_references=True)
    plain_activation = WorkflowActivation(run_id="r")
    plain_activation.jobs.add().signal_workflow.input.add(data=b'{"decider": "alice"}')
    await wrapped(plain_activation, pydantic_data_converter, decode_headers=False, storage_concurrency_limit=1)
    assert sdk_pass.calls == []

    for marker in payload_passes.STORAGE_REFERENCE_MARKERS:
        activation = WorkflowActivation(run_id="r")
        activation.jobs.add().signal_workflow.input.add(metadata={"encoding": marker}, data=b"{}")
        await wrapped(activation, pydantic_data_converter, decode_headers=False, storage_concurrency_limit=1)
    assert len(sdk_pass.calls) == len(payload_passes.STORAGE_REFERENCE_MARKERS)


async def test_a_decision_stored_elsewhere_is_refused_not_handed_to_the_workflow(
    local_env: WorkflowEnvironment,
) -> None:
    """Red team 37: a client with external storage signals a plain worker's workflow.

    The SDK's refusal stands: the workflow task fails and the signal waits in history for a worker
    that can read it, instead of the workflow taking the reference for the decision.
    """
    payload_passes.install()
    target = local_env.client.service_client.config.target_host
    namespace = local_env.client.namespace
    plain = await Client.connect(target, namespace=namespace, data_converter=pydantic_data_converter)
    storage = ExternalStorage(drivers=[MemoryStorage()], payload_size_threshold=0)
    storing_converter = dataclasses.replace(pydantic_data_converter, external_storage=storage)
    storing = await Client.connect(target, namespace=namespace, data_converter=storing_converter)
    queue = f"references-{uuid.uuid4().hex[:8]}"
    async with Worker(plain, task_queue=queue, workflows=[DecisionWaiter], workflow_runner=WORKFLOW_RUNNER):
        handle = await plain.start_workflow(DecisionWaiter.run, id=f"reference-{queue}", task_queue=queue)
        decision = {"decider": "alice", "approve": True}
        await storing.get_workflow_handle(handle.id).signal(DecisionWaiter.decide, decision)
        failure = await _first_task_failure(handle, within=15)
        assert "TMPRL1105" in failure
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        await handle.terminate("test over")


async def _first_task_failure(handle: WorkflowHandle[Any, Any], within: float) -> str:
    for _ in range(int(within / 0.2)):
        async for event in handle.fetch_history_events():
            if event.event_type is EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.2)
    raise AssertionError(f"no workflow task of {handle.id} failed within {within} s")


def test_installing_wraps_each_sdk_entry_point_once() -> None:
    payload_passes.install()
    first = [getattr(bridge_worker, name) for name in ENTRY_POINTS]
    payload_passes.install()
    assert [getattr(bridge_worker, name) for name in ENTRY_POINTS] == first
    assert payload_passes.installed()
    for wrapper in first:
        sdk_pass = getattr(wrapper, payload_passes.WRAPPED)
        assert not hasattr(sdk_pass, payload_passes.WRAPPED)


def test_the_sdk_still_has_the_entry_points_this_wraps_as_it_calls_them() -> None:
    """An SDK upgrade that renames them or moves the converter argument fails here, not silently in production."""
    payload_passes.install()
    for name in ENTRY_POINTS:
        sdk_pass = getattr(getattr(bridge_worker, name), payload_passes.WRAPPED)
        assert inspect.iscoroutinefunction(sdk_pass)
        assert list(inspect.signature(sdk_pass).parameters)[1] == "data_converter"
