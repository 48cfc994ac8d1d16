"""Pytest fixtures around the fake OpenAI server, for any test that needs an LLM.

Use them from a test module with `pytest_plugins = ["tests.fakes.openai_fixtures"]`
(or register that plugin in the root conftest to share them suite-wide).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_server import FAKE_API_KEY, FakeOpenAIServer


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAIServer]:
    """A started fake OpenAI server on a free 127.0.0.1 port, with an empty script."""
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def openai_client(fake_openai: FakeOpenAIServer) -> AsyncIterator[AsyncOpenAI]:
    """A real `AsyncOpenAI` pointed at the fake, built as the worker builds it: no client retries."""
    client = AsyncOpenAI(api_key=FAKE_API_KEY, base_url=fake_openai.base_url, max_retries=0, timeout=5.0)
    try:
        yield client
    finally:
        await client.close()
