"""The worker renders Slack messages without loading the bot or its web stack."""

from __future__ import annotations

import json
import subprocess
import sys

# Every module the worker runs, including the Slack notifier it loads when Slack is configured.
WORKER_MODULES = ["worker.main", "worker.activities", "activities.slack_notify", "rendering.slack", "rendering.words"]


def test_the_worker_imports_neither_bot_nor_starlette() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {WORKER_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'starlette', 'slack_bolt'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == []


def test_the_words_need_nothing_but_core() -> None:
    media = {"bot", "cli", "slack_sdk", "rich", "jinja2"}
    script = (
        "import json, sys\nimport rendering.words\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {media!r})))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == []
