"""docker-compose.yml, checked with Debian's `docker-compose config` since no Docker engine runs here.

Each test works on a copy of the compose project (compose file, deploy/ scripts, Dockerfile)
with a `.env` made from `.env.example`, as an operator would have it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.devserver import SERVER_TUNING
from core.settings import PROJECT_ROOT, Settings, load_settings

DOCKER_COMPOSE = shutil.which("docker-compose")
pytestmark = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose not installed (Debian package docker-compose; `make test-deps` installs it)",
)

APP_SERVICES = {"migrate", "bot", "worker", "llm-worker"}
LONG_RUNNING = {"postgres", "temporal", "temporal-ui", "bot", "worker", "llm-worker"}
ONE_SHOTS = {"temporal-schema", "temporal-namespace", "migrate"}
SCALABLE = {"worker", "llm-worker"}


def _sample_env(password: str = "0123456789abcdef", namespace: str = "tickets") -> str:
    text = (PROJECT_ROOT / ".env.example").read_text()
    assert "\nPOSTGRES_PASSWORD=\n" in text, ".env.example should leave POSTGRES_PASSWORD empty"
    text = text.replace("\nPOSTGRES_PASSWORD=\n", f"\nPOSTGRES_PASSWORD={password}\n")
    return text.replace("\nTEMPORAL_NAMESPACE=default\n", f"\nTEMPORAL_NAMESPACE={namespace}\n")


def _project(directory: Path, env_text: str) -> Path:
    shutil.copy(PROJECT_ROOT / "docker-compose.yml", directory)
    shutil.copy(PROJECT_ROOT / "Dockerfile", directory)
    shutil.copytree(PROJECT_ROOT / "deploy", directory / "deploy")
    (directory / ".env").write_text(env_text)
    return directory


def _compose(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    # Variables of the calling shell take part in interpolation; keep the test's own.
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [DOCKER_COMPOSE, "--no-ansi", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=60
    )


def _mounts(service: dict[str, Any]) -> list[dict[str, str]]:
    """Volumes as {type, source, target}: docker-compose v1 prints `source:target:mode`, v2 a mapping."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts.append({"type": entry["type"], "source": entry["source"], "target": entry["target"]})
        else:
            source, target = entry.split(":")[:2]
            mounts.append({"type": "bind" if source.startswith("/") else "volume", "source": source, "target": target})
    return mounts


def _ports(service: dict[str, Any]) -> list[dict[str, Any]]:
    """Published ports as {host_ip, published, target}, from either syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append(
                {"host_ip": entry.get("host_ip"), "published": int(entry["published"]), "target": int(entry["target"])}
            )
        else:
            *host, published, target = entry.split("/")[0].split(":")
            ports.append({"host_ip": host[0] if host else None, "published": int(published), "target": int(target)})
    return ports


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fully resolved configuration, as `docker compose up` would use it."""
    project = _project(tmp_path_factory.mktemp("compose"), _sample_env())
    quiet = _compose(project, "config", "-q")
    assert quiet.returncode == 0, quiet.stderr
    resolved = _compose(project, "config")
    assert resolved.returncode == 0, resolved.stderr
    loaded: dict[str, Any] = yaml.safe_load(resolved.stdout)
    return loaded


def test_the_whole_stack_is_there(config: dict[str, Any]) -> None:
    assert set(config["services"]) == LONG_RUNNING | ONE_SHOTS


def test_official_temporal_images(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-namespace"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_workers_listen_on_their_own_queues(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["worker"]["command"] == ["worker", "--queue", "workflows"]
    assert services["llm-worker"]["command"] == ["worker", "--queue", "llm"]
    assert services["bot"]["command"] == ["bot"]
    assert services["migrate"]["command"] == ["init-db"]


@pytest.mark.parametrize("name", sorted(SCALABLE))
def test_workers_can_be_scaled(config: dict[str, Any], name: str) -> None:
    """`--scale worker=3` fails on a fixed container name or a published host port."""
    service = config["services"][name]
    assert "container_name" not in service
    assert "ports" not in service
    assert "stop_grace_period" in service


def test_no_service_pins_a_container_name(config: dict[str, Any]) -> None:
    assert [name for name, service in config["services"].items() if "container_name" in service] == []


@pytest.mark.parametrize("name", sorted(LONG_RUNNING | ONE_SHOTS))
def test_restart_policy_and_memory_limit(config: dict[str, Any], name: str) -> None:
    service = config["services"][name]
    expected = "unless-stopped" if name in LONG_RUNNING else "on-failure"
    assert str(service.get("restart", "")).startswith(expected)
    assert service.get("mem_limit"), f"{name} has no memory limit"


def test_postgres_is_durable_healthy_and_sized(config: dict[str, Any]) -> None:
    postgres = config["services"]["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    data_mounts = [m for m in _mounts(postgres) if m["target"] == "/var/lib/postgresql/data"]
    assert data_mounts and data_mounts[0]["type"] == "volume"
    assert data_mounts[0]["source"] in config["volumes"]
    assert postgres["shm_size"] and "max_connections=300" in postgres["command"]


def test_start_order_waits_for_health_and_setup(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["temporal-schema"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["temporal-namespace"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-namespace"]["condition"] == "service_completed_successfully"


def test_bot_is_published_and_health_checked(config: dict[str, Any]) -> None:
    bot = config["services"]["bot"]
    assert [(p["published"], p["target"]) for p in _ports(bot)] == [(3000, 3000)]
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])


def test_nothing_listens_beyond_localhost(config: dict[str, Any]) -> None:
    """Temporal and its Web UI have no login of their own, and the bot is reached through the
    host's TLS proxy (issue 14: its SSO header and throttle trust that proxy): all on 127.0.0.1."""
    for name, service in config["services"].items():
        for port in _ports(service):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} on all interfaces"


def test_bind_mounted_files_exist(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for mount in _mounts(service):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']} is missing"


def test_app_containers_get_valid_settings(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose hands each app container must load as Settings, wired to the other containers."""
    for field, info in Settings.model_fields.items():
        monkeypatch.delenv(str(info.validation_alias or field.upper()), raising=False)
    for name in APP_SERVICES:
        environment = config["services"][name]["environment"]
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, "" if value is None else str(value))
            settings = load_settings(_env_file=None)
        assert settings.temporal_address == "temporal:7233"
        assert settings.temporal_namespace == "tickets"
        assert settings.app_db_url == "postgresql+asyncpg://agent_ticket:0123456789abcdef@postgres:5432/agent_ticket"
        assert settings.target_db_url.endswith("@postgres:5432/agent_ticket_target")
        assert settings.bot_host == "0.0.0.0"
        assert not settings.slack_enabled and not settings.llm_enabled


def test_namespace_is_created_for_the_one_the_app_uses(config: dict[str, Any]) -> None:
    namespace = config["services"]["temporal-namespace"]["environment"]["TEMPORAL_NAMESPACE"]
    assert namespace == config["services"]["bot"]["environment"]["TEMPORAL_NAMESPACE"] == "tickets"
    assert config["services"]["temporal-ui"]["environment"]["TEMPORAL_DEFAULT_NAMESPACE"] == "tickets"


def test_temporal_server_has_the_dev_servers_dynamic_config(config: dict[str, Any]) -> None:
    """Update-with-start and the timer and task-read tuning: the compose server runs as `agent-ticket dev`'s does."""
    temporal = config["services"]["temporal"]
    (mount,) = [m for m in _mounts(temporal) if m["type"] == "bind"]
    assert temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"] == mount["target"]
    dynamic = yaml.safe_load(Path(mount["source"]).read_text())
    dev_server = dict(
        value.split("=", 1) for flag, value in itertools.pairwise(SERVER_TUNING) if flag == "--dynamic-config-value"
    )
    assert set(dev_server) <= set(dynamic), "the compose server lacks a setting the dev server has"
    for key, value in dev_server.items():
        assert dynamic[key] == [{"value": json.loads(value)}], key


def test_missing_database_password_stops_compose(tmp_path: Path) -> None:
    project = _project(tmp_path, (PROJECT_ROOT / ".env.example").read_text())
    result = _compose(project, "config", "-q")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


@pytest.mark.parametrize("script", ["setup-schema.sh", "create-namespace.sh"])
def test_setup_scripts_parse(script: str) -> None:
    result = subprocess.run(["sh", "-n", str(PROJECT_ROOT / "deploy" / "temporal" / script)], capture_output=True)
    assert result.returncode == 0, result.stderr
