"""An LLM that obeys the attacker: an OpenAI-compatible HTTP server answering each ticket with the plan
its attacker wrote, as valid structured output.

Each ticket carries a tag `rt:<name>` in its text; the server finds it in the prompt the real
`openai` client sent and answers with that attack's plan, so many tickets can be planned at once.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

from tests.fakes.openai_server import FakeOpenAIServer, ScriptedReply

TAG = re.compile(r"\brt:([a-z0-9-]+)")


class _Always(deque[ScriptedReply]):
    """A script that never runs out: every request gets a reply, written by `_completion`."""

    def __bool__(self) -> bool:
        return True

    def popleft(self) -> ScriptedReply:
        return ScriptedReply()


class ObedientPlanner(FakeOpenAIServer):
    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[str, dict[str, Any]] = {}
        self._script = _Always()

    def tag_for(self, name: str, plan: dict[str, Any]) -> str:
        """Register `plan` as the answer to tickets tagged `name`; the tag to put in the ticket text."""
        self.plans[name] = plan
        return f"rt:{name}"

    def prompts_for(self, name: str) -> list[str]:
        """The user messages of every request about ticket `name`: what the LLM was shown."""
        texts = [request.message_text("user") for request in self.requests]
        return [text for text in texts if f"rt:{name}" in text]

    def _completion(self, request_body: dict[str, Any], reply: ScriptedReply) -> dict[str, Any]:
        prompt = json.dumps(request_body.get("messages", []))
        match = TAG.search(prompt)
        plan = self.plans.get(match.group(1)) if match else None
        reply.content = json.dumps(plan or {"summary": "No attack tagged.", "rationale": "", "operations": []})
        return super()._completion(request_body, reply)
