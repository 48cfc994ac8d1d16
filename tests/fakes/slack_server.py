"""A fake Slack Web API: real HTTP on 127.0.0.1, answering the way Slack does.

The real `slack_sdk` clients (the bot's, the notifier's, Bolt's) talk to it through
`SLACK_API_URL`, so tests exercise the SDK's own request building, error classes and
header handling. It keeps the state a test asks about (messages and their edits, threads,
ephemeral answers, opened modals, response_url answers) and records every call.

Socket Mode works too: `apps.connections.open` (with the app-level token) hands out a
WebSocket URL, and `send_envelope` delivers an event over it and returns the app's ack.

Like Slack it checks what it is sent: the bearer token (`not_authed`, `invalid_auth`),
the channel (`channel_not_found`, or `not_in_channel` when the bot is not a member),
`message_not_found` for edits, and Block Kit limits (`invalid_blocks`). A test can queue
failures per method: an `ok: false` error or an HTTP 429 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
TEAM_ID = "T0FAKE"
BOT_USER_ID = "UBOT0001"
JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    status: int = 200
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    metadata: dict[str, Any] | None = None

    @property
    def action_ids(self) -> set[str]:
        """The action ids of the message's buttons (not link buttons)."""
        return {
            str(element.get("action_id"))
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button" and "url" not in element
        }

    @property
    def has_buttons(self) -> bool:
        return any(
            element.get("type") == "button" and "url" not in element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        )

    @property
    def everything(self) -> str:
        """Text and block contents together, for assertions about what people read."""
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)


@dataclass
class Failure:
    error: str = "ratelimited"
    status: int = 200
    retry_after: int | None = None
    channel: str | None = None  # only calls for this channel fail
    applied: bool = False  # the call takes effect, but its answer is lost (as when a connection drops)


@dataclass
class FakeSlack:
    token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    channels: set[str] = field(default_factory=lambda: {"C0TICKETS", "C0ESCALATE"})
    not_member: set[str] = field(default_factory=set)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[SlackCall] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _socket_acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    url: str = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket-mode", self._socket_mode)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/respond/{key}"

    # ------------------------------------------------------------ scripting and inspecting

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        channel: str | None = None,
        applied: bool = False,
    ) -> None:
        """The next `times` calls of `method` (for `channel`, if given) fail this way.

        Status 429 is a rate limit (with `Retry-After` when `retry_after` is set); 5xx is Slack having trouble.
        `applied`: the call takes effect at Slack but the caller sees the failure.
        """
        for _ in range(times):
            self._failures[method].append(Failure(error, status, retry_after, channel, applied))

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def top_level(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.thread_ts is None and (channel is None or m.channel == channel)]

    def thread(self, parent: Message) -> list[Message]:
        return [m for m in self.messages if m.thread_ts == parent.ts and m.channel == parent.channel]

    def ephemeral_for(self, user: str, channel: str | None = None) -> list[str]:
        return [
            str(item.get("text", ""))
            for item in self.ephemeral
            if item.get("user") == user and (channel is None or item.get("channel") == channel)
        ]

    def message_mentioning(self, text: str) -> Message:
        found = [m for m in self.top_level() if text in m.everything]
        assert len(found) == 1, f"expected one message with {text!r}, found {len(found)}"
        return found[0]

    async def wait_for(self, condition: Callable[[], object], within: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"fake Slack: timed out waiting for {what}; calls: {[c.method for c in self.calls]}")

    # ------------------------------------------------------------ Socket Mode

    @property
    def socket_connected(self) -> bool:
        return any(not socket.closed for socket in self._sockets)

    async def send_envelope(self, kind: str, payload: dict[str, Any], within: float = 5.0) -> dict[str, Any]:
        """Deliver an event over the app's WebSocket as Slack does; return the app's acknowledgement."""
        socket = next(socket for socket in self._sockets if not socket.closed)
        envelope_id = f"envelope-{next(self._ts)}"
        acknowledged = asyncio.get_running_loop().create_future()
        self._socket_acks[envelope_id] = acknowledged
        await socket.send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return await asyncio.wait_for(acknowledged, within)

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"}})
        async for frame in socket:
            if frame.type != web.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            waiting = self._socket_acks.pop(str(message.get("envelope_id")), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
        return socket

    # ------------------------------------------------------------ HTTP

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses[request.match_info["key"]].append(await request.json())
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        token = _token(request, args)
        call = SlackCall(method=method, args=args, token=token, at=time.monotonic())
        self.calls.append(call)
        failure = self._next_failure(method, args)
        if failure is not None:
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if failure.applied and handler is not None:
                handler(args)
            call.status, call.error = failure.status, failure.error
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return web.json_response({"ok": False, "error": failure.error}, status=call.status, headers=headers)
        if token is None:
            return self._error(call, "not_authed")
        if token != (self.app_token if method == "apps.connections.open" else self.token):
            return self._error(call, "invalid_auth")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return self._error(call, "unknown_method")
        try:
            body = handler(args)
        except SlackError as error:
            return self._error(call, error.code)
        return web.json_response({"ok": True, **body})

    def _next_failure(self, method: str, args: dict[str, Any]) -> Failure | None:
        queue = self._failures[method]
        for failure in list(queue):
            if failure.channel is None or failure.channel == args.get("channel"):
                queue.remove(failure)
                return failure
        return None

    def _error(self, call: SlackCall, code: str) -> web.Response:
        call.error = code
        return web.json_response({"ok": False, "error": code})

    # ------------------------------------------------------------ methods

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://fake.slack.com/", "team": "Fake", "user": "agent-ticket", "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": "B0FAKE"}  # fmt: skip

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.url.replace("http://", "ws://") + "/socket-mode"}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args)
        text, blocks = _content(args)
        thread_ts = args.get("thread_ts")
        if thread_ts and not any(m.ts == thread_ts and m.channel == channel for m in self.messages):
            raise SlackError("thread_not_found")
        metadata = args.get("metadata") if isinstance(args.get("metadata"), dict) else None
        message = Message(
            channel=channel, ts=self._next_ts(), text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata
        )
        self.messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": {"text": text, "blocks": blocks, "ts": message.ts}}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args)
        ts = str(args.get("ts", ""))
        message = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
        if message is None:
            raise SlackError("message_not_found")
        message.text, message.blocks = _content(args)
        message.edits += 1
        return {"channel": channel, "ts": ts, "text": message.text}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args)
        ts = str(args.get("ts", ""))
        if not any(m.channel == channel and m.ts == ts for m in self.messages):
            raise SlackError("thread_not_found")
        thread = [m for m in self.messages if m.channel == channel and (m.ts == ts or m.thread_ts == ts)]
        return {"messages": [_listed(m, args) for m in thread], "has_more": False}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args)
        limit = int(args.get("limit") or 100)
        top = [m for m in reversed(self.messages) if m.channel == channel and m.thread_ts is None][:limit]
        return {"messages": [_listed(m, args) for m in top], "has_more": False}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args)
        if not args.get("user"):
            raise SlackError("user_not_found")
        text, blocks = _content(args)
        self.ephemeral.append({"channel": channel, "user": args["user"], "text": text, "blocks": blocks})
        return {"message_ts": self._next_ts()}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise SlackError("invalid_trigger_id")
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        if len(view.get("title", {}).get("text", "")) > 24 or not view.get("blocks"):
            raise SlackError("invalid_arguments")
        opened = {**view, "id": f"V{len(self.views) + 1:06d}", "trigger_id": args["trigger_id"]}
        self.views.append(opened)
        return {"view": opened}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup", ""))
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _member_channel(self, args: dict[str, Any]) -> str:
        channel = str(args.get("channel", ""))
        if channel in self.not_member:
            raise SlackError("not_in_channel")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        return channel

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"


def _listed(message: Message, args: dict[str, Any]) -> dict[str, Any]:
    """A message as conversations.* list it; metadata only when asked for, as Slack does."""
    listed: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text}
    if message.thread_ts:
        listed["thread_ts"] = message.thread_ts
    if message.metadata and str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
        listed["metadata"] = message.metadata
    return listed


class SlackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Slack accepts query strings, form posts and JSON bodies; form fields may hold JSON."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        args.update(await request.json())
    elif request.can_read_body:
        args.update({key: str(value) for key, value in (await request.post()).items()})
    for key in JSON_FIELDS:
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def _token(request: web.Request, args: dict[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    token = args.get("token")
    return str(token) if token else None


def _content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Text and blocks, checked against Slack's limits as Slack would."""
    text = str(args.get("text") or "")
    blocks = args.get("blocks") or []
    if not text and not blocks:
        raise SlackError("no_text")
    if len(blocks) > 50:
        raise SlackError("invalid_blocks")
    for block in blocks:
        if block.get("type") == "section" and len((block.get("text") or {}).get("text", "")) > 3000:
            raise SlackError("invalid_blocks")
        if block.get("type") == "header" and len(block["text"]["text"]) > 150:
            raise SlackError("invalid_blocks")
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if len(element.get("value") or "") > 2000:
                raise SlackError("invalid_blocks")
    return text, blocks
