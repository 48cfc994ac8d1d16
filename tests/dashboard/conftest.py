"""Fixtures for the dashboard: the app on the real workflow (local dev server) and signed-in clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.dashboard.harness import DashboardWorld, dashboard_world, http_client, sign_in


@pytest.fixture(scope="module")
async def world(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DashboardWorld]:
    """One app, databases and worker per test module; each test files tickets of its own."""
    async with dashboard_world(local_env.client, tmp_path_factory.mktemp("dashboard")) as built:
        yield built


@pytest.fixture
async def anonymous(world: DashboardWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(world.app) as client:
        yield client


@asynccontextmanager
async def signed_in(world: DashboardWorld, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(world.app) as client:
        response = await sign_in(client, username)
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
async def bob(world: DashboardWorld) -> AsyncIterator[httpx.AsyncClient]:
    """An approver."""
    async with signed_in(world, "bob") as client:
        yield client


@pytest.fixture
async def mallory(world: DashboardWorld) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in, but not an approver."""
    async with signed_in(world, "mallory") as client:
        yield client
