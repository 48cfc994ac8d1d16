"""docs/decisions.md says exactly what the workflow accepts: the generated schema and every example."""

from __future__ import annotations

import json
import re
import shlex

from core.approval import parse_decision
from core.models import Decision
from core.names import SIGNAL_APPROVE, SIGNAL_REJECT
from scripts.decision_schema import DOC, END, START, main, with_schema

TEXT = DOC.read_text()


def test_the_documented_schema_is_the_models() -> None:
    block = TEXT.split(START, 1)[1].split(END, 1)[0]
    schema = re.search(r"```json\n(.*)\n```", block, re.DOTALL)
    assert schema, "no JSON block between the schema markers"
    assert json.loads(schema.group(1)) == Decision.model_json_schema(), "run: python -m scripts.decision_schema"
    assert main(["--check"]) == 0


def test_the_generator_replaces_only_its_block() -> None:
    before, rest = TEXT.split(START, 1)
    stale = before + START + "\n```json\n{}\n```\n" + END + rest.split(END, 1)[1]
    assert stale != TEXT
    assert with_schema(stale) == TEXT


def test_every_json_example_is_a_valid_decision() -> None:
    examples = re.findall(r"```json\n(\{.*?\})\n```", TEXT.split(START)[0], re.DOTALL)
    assert len(examples) == 2
    for example in examples:
        Decision.model_validate_json(example)


def test_every_pasteable_command_carries_a_valid_decision() -> None:
    commands = [line for line in TEXT.splitlines() if line.startswith("temporal workflow ") and "--input" in line]
    names = set()
    for line in commands:
        words = shlex.split(line)
        name = words[words.index("--name") + 1]
        names.add(name)
        payload = json.loads(words[words.index("--input") + 1])
        approve = {SIGNAL_APPROVE: True, SIGNAL_REJECT: False}[name]
        decision, problem = parse_decision(payload, approve)
        assert problem is None, (line, problem)
        assert decision.source.value == "api" and not decision.proof  # what an unsigned raw client sends
    assert names == {SIGNAL_APPROVE, SIGNAL_REJECT}
