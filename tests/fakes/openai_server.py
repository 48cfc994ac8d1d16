"""A fake OpenAI-compatible server: real HTTP on 127.0.0.1, scripted per test.

The real `openai` client talks to it over the network, so tests exercise the
client's own request building, response parsing, error classes and time-outs.
Each test queues the replies it wants (a structured plan, broken JSON, a
refusal, a 429 with Retry-After, a slow answer, a dropped connection ...) and
afterwards inspects every request the server received.

Like the real API, the server checks a request before it answers it: a
missing bearer token is a 401, a body without `model` or `messages` is a 400,
and a `json_schema` response format marked `strict` that OpenAI would refuse
(e.g. `oneOf`, objects without `additionalProperties: false`, properties left
out of `required`) is a 400. Those answers do not consume a scripted reply.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
FAKE_API_KEY = "sk-test-fake-key"
CHAT_COMPLETIONS_PATH = "/v1/chat/completions"

# Keywords that OpenAI's strict structured outputs refuse wherever they appear.
UNSUPPORTED_STRICT_KEYWORDS = (
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
)


@dataclass
class ScriptedReply:
    """One answer the server gives to the next chat completion request.

    `body` None with `status` 200 means "build a chat.completion from
    `content`/`refusal`/`finish_reason`". `abort` drops the connection without
    answering; `delay` holds the answer back (longer than the client's
    time-out, it becomes a time-out).
    """

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    abort: bool = False


@dataclass
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: str

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages", []))

    def message_text(self, role: str | None = None) -> str:
        """All message contents (of one role, if given) joined, for prompt assertions."""
        parts = []
        for message in self.messages:
            if role is not None and message.get("role") != role:
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return "\n".join(parts)

    @property
    def response_schema(self) -> dict[str, Any] | None:
        response_format = (self.body or {}).get("response_format") or {}
        json_schema = response_format.get("json_schema") or {}
        schema = json_schema.get("schema")
        return schema if isinstance(schema, dict) else None


# ---------------------------------------------------------------- reply builders


def content_reply(content: str, *, finish_reason: str = "stop") -> ScriptedReply:
    """An assistant message with this exact content (valid JSON or not)."""
    return ScriptedReply(content=content, finish_reason=finish_reason)


def json_reply(value: BaseModel | dict[str, Any], *, finish_reason: str = "stop") -> ScriptedReply:
    """A structured-output answer: the JSON of `value` as the message content."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return content_reply(json.dumps(data), finish_reason=finish_reason)


def refusal_reply(refusal: str = "I'm sorry, I can't help with that request.") -> ScriptedReply:
    """A structured-output refusal: `content` null, `message.refusal` set."""
    return ScriptedReply(content=None, refusal=refusal)


def length_reply(partial: str = '{"summary": "Upgrade acme-corp to the pro pl') -> ScriptedReply:
    """Output cut off at the token limit: `finish_reason` "length", truncated content."""
    return ScriptedReply(content=partial, finish_reason="length")


def error_reply(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> ScriptedReply:
    """An API error in OpenAI's envelope: `{"error": {message, type, param, code}}`."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return ScriptedReply(status=status, body=body, headers=dict(headers or {}))


def rate_limited_reply(retry_after: str | None = "7", retry_after_ms: str | None = None) -> ScriptedReply:
    """A 429 as OpenAI sends it, with `retry-after` (seconds or HTTP-date) and/or `retry-after-ms`."""
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "7s",
    }
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return error_reply(
        429,
        "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): "
        "Limit 500, Used 500, Requested 1. Please try again in 7s.",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def server_error_reply(status: int = 500) -> ScriptedReply:
    return error_reply(
        status, "The server had an error while processing your request. Sorry about that!", type="server_error"
    )


def unauthorized_reply() -> ScriptedReply:
    return error_reply(
        401,
        "Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def slow_reply(delay: float, then: ScriptedReply | None = None) -> ScriptedReply:
    """`then` (a plain empty-plan answer by default), held back for `delay` seconds."""
    reply = then or json_reply({"summary": "slow", "rationale": "", "operations": []})
    reply.delay = delay
    return reply


def connection_reset_reply() -> ScriptedReply:
    """Drop the TCP connection without sending a response."""
    return ScriptedReply(abort=True)


# ---------------------------------------------------------------- strict schema check


def strict_schema_problems(schema: Any, path: tuple[str, ...] = ()) -> list[str]:
    """What OpenAI's strict structured outputs would refuse in `schema`, as messages."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return problems
    context = f"In context={path!r}"
    for keyword in UNSUPPORTED_STRICT_KEYWORDS:
        if keyword in schema:
            problems.append(f"{context}, '{keyword}' is not permitted.")
    if not path and schema.get("type") != "object":
        problems.append(
            f"{context}, schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
        )
    if "allOf" in schema:
        problems.append(f"{context}, 'allOf' is not permitted.")
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{context}, 'additionalProperties' is required to be supplied and to be false.")
        properties = schema.get("properties") or {}
        missing = [name for name in properties if name not in (schema.get("required") or [])]
        if missing:
            problems.append(
                f"{context}, 'required' is required to be supplied and to be an array including every key in "
                f"properties. Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            problems += strict_schema_problems(sub, (*path, "properties", name))
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            problems += strict_schema_problems(sub, (*path, key, name))
    if isinstance(schema.get("items"), dict):
        problems += strict_schema_problems(schema["items"], (*path, "items"))
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key) or []):
            problems += strict_schema_problems(sub, (*path, key, str(index)))
    return problems


# ---------------------------------------------------------------- the server


class FakeOpenAIServer:
    """Scriptable OpenAI-compatible HTTP server; start with `start()`, stop with `close()`."""

    def __init__(self, *, model: str = DEFAULT_MODEL, require_auth: bool = True) -> None:
        self.model = model
        self.require_auth = require_auth
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedReply] = deque()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- scripting

    def enqueue(self, *replies: ScriptedReply) -> None:
        """Queue replies, answered in order, one per chat completion request."""
        self._script.extend(replies)

    script = enqueue

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        return len(self._script)

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("fake OpenAI server is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    # -- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Handlers are cancelled when a client hangs up (time-out tests), and
        # shutdown does not wait for answers nobody is listening to any more.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets, "the fake OpenAI server did not bind a socket"
        self._port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        self.requests.append(
            RecordedRequest(request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, body, raw)
        )
        if request.method != "POST" or request.path != CHAT_COMPLETIONS_PATH:
            return self._error(404, f"Invalid URL ({request.method} {request.path})")
        if self.require_auth and not request.headers.get("Authorization", "").startswith("Bearer "):
            return self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not isinstance(body, dict):
            return self._error(400, "We could not parse the JSON body of your request.")
        for required in ("model", "messages"):
            if required not in body:
                return self._error(400, f"Missing required parameter: '{required}'.", param=required)
        schema_error = self._check_response_format(body.get("response_format"))
        if schema_error:
            return self._error(400, schema_error, param="response_format")
        if not self._script:
            return self._error(500, "fake OpenAI server: no scripted reply left for this request", type="server_error")
        reply = self._script.popleft()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.abort:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never reaches the client: the connection is gone
        if reply.body is not None or reply.status != 200:
            return self._json(reply.status, reply.body or {}, reply.headers)
        return self._json(200, self._completion(body, reply), reply.headers)

    def _check_response_format(self, response_format: Any) -> str | None:
        if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
            return None
        json_schema = response_format.get("json_schema") or {}
        if not json_schema.get("strict"):
            return None
        problems = strict_schema_problems(json_schema.get("schema"))
        if problems:
            return f"Invalid schema for response_format '{json_schema.get('name')}': {problems[0]}"
        return None

    def _completion(self, request_body: dict[str, Any], reply: ScriptedReply) -> dict[str, Any]:
        prompt_tokens = max(1, len(json.dumps(request_body.get("messages", []))) // 4)
        completion_tokens = max(1, len(reply.content or reply.refusal or "") // 4)
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request_body.get("model") or self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.content,
                        "refusal": reply.refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
        all_headers = {"x-request-id": f"req_fake{len(self.requests):06d}", "openai-processing-ms": "12", **headers}
        return web.json_response(body, status=status, headers=all_headers)

    def _error(
        self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None
    ) -> web.Response:
        body = {"error": {"message": message, "type": type, "param": param, "code": None}}
        return self._json(status, body, {})
