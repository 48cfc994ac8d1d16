"""Leaving out the SDK's payload passes over workflow activations when they can change nothing.

temporalio 1.35 walks every workflow activation three times before the workflow sees it, and every
completion three times after (the payload codec, external storage, and the codec over storage
references), whatever the data converter holds. Each walk visits every payload of every job or
command and asks the workflow instance for that command's serialization context. With no payload
codec and no external storage configured, every one of those steps hands each payload back
unchanged: the walks were 18 % of the worker's Python time at full load (bench/notes.md, item 36).

`install()` wraps the SDK's two entry points so that a data converter with neither skips the walks;
one with either (a deployment that adds encryption, say) goes through the SDK's own code, unchanged.
One thing the decoding walks do without either: refuse a payload another client or worker stored
outside Temporal, which this worker cannot read (the task fails and waits; red team 37 found the
workflow handed the reference as if it were the value). An activation that may hold one, by the
SDK's own markers anywhere in its bytes, is walked as before.
The SDK calls the entry points through their module on every activation, so the wrapper applies
to every worker in the process. Before each walk the SDK also builds a command-aware data converter
(a new payload converter and failure converter each time: 4 % of the worker's Python time at full
load, item 38) that only the walks use; with nothing for them to change, the worker's own converter
goes to them instead. `tests/worker/test_payload_passes.py` checks each path and that
the SDK still has what this wraps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import temporalio.bridge.worker as bridge_worker
import temporalio.worker._workflow as sdk_workflow_worker
from google.protobuf.message import Message
from temporalio.converter import DataConverter
from temporalio.converter._extstore import (
    _REFERENCE_ENCODING,
    _REFERENCE_MARKER_KEY,
    _REFERENCE_MESSAGE_TYPE,
    StorageOperationMetrics,
)

PayloadPass = Callable[..., Awaitable[StorageOperationMetrics]]

WRAPPED = "_agent_ticket_wraps"  # marks the installed wrappers, so installing twice wraps once
# What the SDK recognises an externally stored payload by (`_is_reference_payload`, `_has_reference_marker`).
STORAGE_REFERENCE_MARKERS = (_REFERENCE_ENCODING, _REFERENCE_MESSAGE_TYPE, _REFERENCE_MARKER_KEY.encode())


def passes_change_nothing(data_converter: DataConverter) -> bool:
    """True when every pass would return each payload as it is: no codec and no external storage."""
    return data_converter.payload_codec is None and data_converter.external_storage is None


def may_hold_storage_reference(message: Message) -> bool:
    """Whether a payload in `message` may be a reference to one stored elsewhere (false alarms only cost the walk)."""
    serialized = message.SerializeToString()
    return any(marker in serialized for marker in STORAGE_REFERENCE_MARKERS)


def _skipping_idle_passes(sdk_pass: PayloadPass, *, refuses_references: bool) -> PayloadPass:
    @functools.wraps(sdk_pass)
    async def run(message: Any, data_converter: DataConverter, *args: Any, **kwargs: Any) -> StorageOperationMetrics:
        if passes_change_nothing(data_converter) and not (refuses_references and may_hold_storage_reference(message)):
            return StorageOperationMetrics()
        return await sdk_pass(message, data_converter, *args, **kwargs)

    setattr(run, WRAPPED, sdk_pass)
    return run


def _plain_when_passes_idle(sdk_create: Callable[..., DataConverter]) -> Callable[..., DataConverter]:
    """The SDK's per-activation converter for the passes, or the workflow's own when no pass can change a payload.

    Per-command serialization contexts matter only to a codec or an external store; without either,
    a walk that still runs (for a storage reference) refuses references the same with either converter.
    """

    @functools.wraps(sdk_create)
    def create(*, workflow_context_dc: DataConverter, **sdk_arguments: Any) -> DataConverter:
        if passes_change_nothing(workflow_context_dc):
            return workflow_context_dc
        return sdk_create(workflow_context_dc=workflow_context_dc, **sdk_arguments)

    setattr(create, WRAPPED, sdk_create)
    return create


def install() -> None:
    """Skip the passes, and the converters built for them, where they cannot change anything; idempotent."""
    for name, refuses_references in (("decode_activation", True), ("encode_completion", False)):
        sdk_pass = getattr(bridge_worker, name)
        if not hasattr(sdk_pass, WRAPPED):
            setattr(bridge_worker, name, _skipping_idle_passes(sdk_pass, refuses_references=refuses_references))
    converter = sdk_workflow_worker._CommandAwareDataConverter
    if not hasattr(converter.create, WRAPPED):
        converter.create = staticmethod(_plain_when_passes_idle(converter.create))  # type: ignore[method-assign]


def installed() -> bool:
    passes = all(hasattr(getattr(bridge_worker, name), WRAPPED) for name in ("decode_activation", "encode_completion"))
    return passes and hasattr(sdk_workflow_worker._CommandAwareDataConverter.create, WRAPPED)
