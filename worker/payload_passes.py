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
to every worker in the process. `tests/worker/test_payload_passes.py` checks each path and that
the SDK still has what this wraps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import temporalio.bridge.worker as bridge_worker
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


def install() -> None:
    """Skip the passes for converters they cannot change; idempotent."""
    for name, refuses_references in (("decode_activation", True), ("encode_completion", False)):
        sdk_pass = getattr(bridge_worker, name)
        if not hasattr(sdk_pass, WRAPPED):
            setattr(bridge_worker, name, _skipping_idle_passes(sdk_pass, refuses_references=refuses_references))


def installed() -> bool:
    return all(hasattr(getattr(bridge_worker, name), WRAPPED) for name in ("decode_activation", "encode_completion"))
