"""Leaving out the SDK's payload passes over workflow activations when they can change nothing.

temporalio 1.35 walks every workflow activation three times before the workflow sees it, and every
completion three times after (the payload codec, external storage, and the codec over storage
references), whatever the data converter holds. Each walk visits every payload of every job or
command and asks the workflow instance for that command's serialization context. With no payload
codec and no external storage configured, every one of those steps hands each payload back
unchanged: the walks were 18 % of the worker's Python time at full load (bench/notes.md, item 36).

`install()` wraps the SDK's two entry points so that a data converter with neither skips the walks;
one with either (a deployment that adds encryption, say) goes through the SDK's own code, unchanged.
The SDK calls the entry points through their module on every activation, so the wrapper applies
to every worker in the process. Skipped with them is the SDK's refusal of an externally stored
payload when no storage is configured; such a payload then fails to convert instead, which fails
the activation all the same. `tests/worker/test_payload_passes.py` checks both paths and that the
SDK still has the entry points this wraps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import temporalio.bridge.worker as bridge_worker
from temporalio.converter import DataConverter
from temporalio.converter._extstore import StorageOperationMetrics

PayloadPass = Callable[..., Awaitable[StorageOperationMetrics]]

WRAPPED = "_agent_ticket_wraps"  # marks the installed wrappers, so installing twice wraps once


def passes_change_nothing(data_converter: DataConverter) -> bool:
    """True when every pass would return each payload as it is: no codec and no external storage."""
    return data_converter.payload_codec is None and data_converter.external_storage is None


def _skipping_idle_passes(sdk_pass: PayloadPass) -> PayloadPass:
    @functools.wraps(sdk_pass)
    async def run(message: Any, data_converter: DataConverter, *args: Any, **kwargs: Any) -> StorageOperationMetrics:
        if passes_change_nothing(data_converter):
            return StorageOperationMetrics()
        return await sdk_pass(message, data_converter, *args, **kwargs)

    setattr(run, WRAPPED, sdk_pass)
    return run


def install() -> None:
    """Skip the passes for converters they cannot change; idempotent."""
    for name in ("decode_activation", "encode_completion"):
        sdk_pass = getattr(bridge_worker, name)
        if not hasattr(sdk_pass, WRAPPED):
            setattr(bridge_worker, name, _skipping_idle_passes(sdk_pass))


def installed() -> bool:
    return all(hasattr(getattr(bridge_worker, name), WRAPPED) for name in ("decode_activation", "encode_completion"))
