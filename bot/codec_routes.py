"""The codec server the Temporal Web UI and CLI call to show encrypted payloads in the clear.

Temporal's codec server protocol: `POST <endpoint>/decode` and `POST <endpoint>/encode`, each
with a proto3-JSON body `{"payloads": [{"metadata": {...}, "data": "<base64>"}]}` and the same
shape back. The endpoint here is `<public url>/codec`. Only callers with the bearer token
`CODEC_AUTH_TOKEN` are served, since decoding hands out exactly what the encryption hides; the
Web UI's origin (`TEMPORAL_UI_URL`) may call it from the browser (CORS, preflight included).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from google.protobuf import json_format
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from temporalio.api.common.v1 import Payload, Payloads

from bot.context import BotContext
from core.codec import EncryptionCodec, PayloadDecryptionError
from core.settings import Settings

logger = logging.getLogger(__name__)

CODEC_PATH = "/codec"
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = ["authorization", "content-type", "x-namespace"]
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class BodyTooLarge(Exception):
    pass


def codec_routes(context: BotContext) -> list[BaseRoute]:
    """The `/codec` routes for the bot's app; none when payload encryption is off."""
    return build_codec_routes(context.settings)


def build_codec_routes(settings: Settings) -> list[BaseRoute]:
    keys = settings.codec_keys
    if not keys:
        return []
    token = settings.codec_auth_token.get_secret_value() if settings.codec_auth_token else None
    if token is None:
        logger.warning("payload encryption is on but CODEC_AUTH_TOKEN is not set: the codec endpoint refuses everyone")
    endpoint = CodecEndpoint(EncryptionCodec(keys), token)
    cors = Middleware(
        CORSMiddleware,
        allow_origins=web_ui_origins(settings.temporal_ui_url),
        allow_methods=["POST"],
        allow_headers=ALLOWED_HEADERS,
        max_age=600,
    )
    routes = [
        Route("/encode", endpoint.encode, methods=["POST"]),
        Route("/decode", endpoint.decode, methods=["POST"]),
    ]
    return [Mount(CODEC_PATH, routes=routes, middleware=[cors])]


def web_ui_origins(ui_url: str) -> list[str]:
    """The browser origin(s) of the Web UI; a loopback UI is reachable as localhost and 127.0.0.1."""
    parts = urlsplit(ui_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    if parts.hostname in LOOPBACK_HOSTS:
        port = f":{parts.port}" if parts.port else ""
        origins = [f"{parts.scheme}://{host}{port}" for host in LOOPBACK_HOSTS]
    return origins


class CodecEndpoint:
    """Runs payloads through the codec for callers holding the token."""

    def __init__(self, codec: EncryptionCodec, token: str | None) -> None:
        self._codec = codec
        self._token = token.encode() if token else None

    async def encode(self, request: Request) -> Response:
        return await self._serve(request, self._codec.encode)

    async def decode(self, request: Request) -> Response:
        return await self._serve(request, self._codec.decode)

    async def _serve(self, request: Request, transform: Transform) -> Response:
        refusal = self._refusal(request)
        if refusal is not None:
            client = request.client.host if request.client else "unknown"
            logger.warning("codec %s refused for %s: %s", request.url.path, client, refusal)
            return JSONResponse(
                {"error": refusal}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="agent-ticket codec"'}
            )
        try:
            body = await _read_body(request)
        except BodyTooLarge:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except json_format.ParseError as error:
            return JSONResponse({"error": f'expected {{"payloads": [...]}} as proto3 JSON: {error}'}, status_code=400)
        try:
            result = await transform(list(payloads.payloads))
        except PayloadDecryptionError as error:
            return JSONResponse({"error": str(error)}, status_code=422)
        return Response(json_format.MessageToJson(Payloads(payloads=result)), media_type="application/json")

    def _refusal(self, request: Request) -> str | None:
        """Why this caller may not use the codec, or None when it presented the configured token."""
        if self._token is None:
            return "CODEC_AUTH_TOKEN is not configured, so the codec endpoint serves no one"
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return "a bearer token is required"
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            return "the bearer token is not the configured CODEC_AUTH_TOKEN"
        return None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return bytes(body)
