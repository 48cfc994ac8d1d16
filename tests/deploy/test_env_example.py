"""`.env.example` documents every setting, with a comment, a default that loads, and no secret in it.

Adding a field to `Settings` without documenting it here fails this test on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from core.settings import PROJECT_ROOT, Settings, load_settings

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
COMPOSE_SECTION = "# --- docker compose only"
ASSIGNMENT = re.compile(r"^(?P<commented># )?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    commented: bool
    documented: bool
    line: str


def _entries(text: str) -> list[Entry]:
    """The app's section: each `NAME=` or `# NAME=` line, documented when the first line above
    it that is not another assignment is prose (settings that go together may share a comment)."""
    lines = text.split(COMPOSE_SECTION)[0].splitlines()
    entries = []
    for index, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if not match:
            continue
        above = next((earlier for earlier in reversed(lines[:index]) if not ASSIGNMENT.match(earlier)), "")
        documented = above.startswith("# ") and not above.startswith("# ---")
        entries.append(Entry(match["name"], match["value"], bool(match["commented"]), documented, line))
    return entries


def _variable(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else field.upper()


VARIABLES = {_variable(field): field for field in Settings.model_fields}
ENTRIES = _entries(ENV_EXAMPLE.read_text())


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_every_setting_is_documented() -> None:
    missing = sorted(set(VARIABLES) - {entry.name for entry in ENTRIES})
    assert missing == [], f"add these to .env.example with a comment: {missing}"


def test_no_unknown_or_repeated_names() -> None:
    names = [entry.name for entry in ENTRIES]
    assert sorted(set(names) - set(VARIABLES)) == []
    assert len(names) == len(set(names))


def test_each_setting_has_a_comment_above_it() -> None:
    assert [entry.name for entry in ENTRIES if not entry.documented] == []


def test_secrets_are_empty() -> None:
    secrets = {name for name, field in VARIABLES.items() if _is_secret(field)}
    assert secrets, "Settings has SecretStr fields"
    assert [entry.line for entry in ENTRIES if entry.name in secrets and entry.value.strip("'\"")] == []


def test_postgres_password_is_empty_too() -> None:
    compose_part = ENV_EXAMPLE.read_text().split(COMPOSE_SECTION)[1]
    assert "\nPOSTGRES_PASSWORD=\n" in compose_part


def test_the_file_loads_and_its_values_are_the_defaults(tmp_path: Path) -> None:
    """Copying it to `.env` unchanged must give exactly the built-in defaults."""
    loaded = load_settings(_env_file=str(ENV_EXAMPLE))
    defaults = load_settings(_env_file=None)
    assert loaded.model_dump() == defaults.model_dump()
    active = {entry.name for entry in ENTRIES if not entry.commented}
    assert set(dotenv_values(ENV_EXAMPLE)) >= active


# Settings that refuse to load alone, with what they need beside them.
NEEDS = {"DASHBOARD_TRUSTED_HEADER": "TRUSTED_PROXY_IPS=10.0.0.2\n"}


@pytest.mark.parametrize(
    "entry",
    [e for e in ENTRIES if e.commented and e.value and not e.name.endswith(("_PATH", "_FILE"))],
    ids=lambda e: e.name,
)
def test_commented_examples_are_valid_values(entry: Entry, tmp_path: Path) -> None:
    """Uncommenting an example (files aside, which exist only on a real host) must load."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"{entry.name}={entry.value}\n{NEEDS.get(entry.name, '')}")
    settings = load_settings(_env_file=str(env_file))
    assert getattr(settings, VARIABLES[entry.name]) is not None


def _is_secret(field: str) -> bool:
    annotation = Settings.model_fields[field].annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())
