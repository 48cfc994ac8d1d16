"""The SDK's payload passes: left out when they can change nothing, run as the SDK runs them otherwise.

That a ticket runs end to end with them left out is what the rest of the suite shows; that an
encrypting worker still encrypts every payload with `install()` in place is
`tests/codec/test_encrypted_history.py` (a real ticket's history holds only ciphertext).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import temporalio.bridge.worker as bridge_worker
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.converter._extstore import StorageOperationMetrics

from core.codec import EncryptionCodec
from tests.codec.keys import K1
from worker import payload_passes

ENTRY_POINTS = ("decode_activation", "encode_completion")


class RecordingPass:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.metrics = StorageOperationMetrics(payload_count=3)

    async def __call__(self, *args: Any, **kwargs: Any) -> StorageOperationMetrics:
        self.calls.append((*args, kwargs))
        return self.metrics


async def test_the_passes_are_left_out_only_when_there_is_no_codec_and_no_external_storage() -> None:
    sdk_pass = RecordingPass()
    wrapped = payload_passes._skipping_idle_passes(sdk_pass)
    completion = WorkflowActivationCompletion(run_id="r")

    for plain in (DataConverter.default, pydantic_data_converter):
        metrics = await wrapped(completion, plain, encode_headers=False, storage_concurrency_limit=1)
        assert metrics.payload_count == 0
    assert sdk_pass.calls == []

    encrypting = dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec([K1]))
    metrics = await wrapped(completion, encrypting, encode_headers=True, storage_concurrency_limit=4)
    assert metrics is sdk_pass.metrics
    assert sdk_pass.calls == [(completion, encrypting, {"encode_headers": True, "storage_concurrency_limit": 4})]


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
