"""The codec server the Web UI calls: decodes for the token holder only, answers CORS preflights."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from starlette.applications import Starlette
from temporalio.api.common.v1 import Payload, Payloads

from bot.codec_routes import MAX_BODY_BYTES, build_codec_routes, web_ui_origins
from core.codec import EncryptionCodec
from core.settings import Settings, load_settings
from tests.codec.keys import K1, K2, TOKEN, keys_setting

UI_ORIGIN = "http://localhost:8233"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"text":"refund jane@example.com"}')


def codec_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "payload_codec_keys": keys_setting(K1),
        "codec_auth_token": TOKEN,
        "temporal_ui_url": UI_ORIGIN,
    }
    values.update(overrides)
    return load_settings(_env_file=None, **values)


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def payloads_of(response: httpx.Response) -> list[Payload]:
    return list(json_format.Parse(response.text, Payloads()).payloads)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=build_codec_routes(codec_settings()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as client:
        yield client


async def test_decode_with_the_token_returns_the_plain_payloads(http: httpx.AsyncClient) -> None:
    sealed = await EncryptionCodec([K1]).encode([PLAIN])
    response = await http.post("/codec/decode", content=body(*sealed), headers={**AUTH, "Origin": UI_ORIGIN})
    assert response.status_code == 200
    assert payloads_of(response) == [PLAIN]
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN


async def test_encode_with_the_token_seals_with_the_current_key(http: httpx.AsyncClient) -> None:
    response = await http.post("/codec/encode", content=body(PLAIN), headers=AUTH)
    assert response.status_code == 200
    [sealed] = payloads_of(response)
    assert sealed.metadata["encryption-key-id"] == b"k1" and b"jane" not in sealed.data
    assert await EncryptionCodec([K1]).decode([sealed]) == [PLAIN]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["none", "wrong", "no-scheme", "basic"],
)
@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
async def test_without_the_token_nothing_is_served(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    sealed = await EncryptionCodec([K1]).encode([PLAIN])
    response = await http.post(path, content=body(*sealed), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "jane" not in response.text and "payloads" not in response.json()


async def test_no_configured_token_refuses_everyone() -> None:
    app = Starlette(routes=build_codec_routes(codec_settings(codec_auth_token=None)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as client:
        response = await client.post("/codec/decode", content=body(PLAIN), headers=AUTH)
    assert response.status_code == 401
    assert "CODEC_AUTH_TOKEN is not configured" in response.json()["error"]


async def test_preflight_from_the_web_ui_is_answered(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-namespace"} <= {h.strip() for h in allowed.split(",")}


async def test_other_origins_get_no_cors_grant(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/codec/decode", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = await http.post("/codec/decode", content=body(PLAIN), headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_bad_requests_get_clear_errors(http: httpx.AsyncClient) -> None:
    malformed = await http.post("/codec/decode", content="{not json", headers=AUTH)
    assert malformed.status_code == 400 and "payloads" in malformed.json()["error"]
    [other_key] = await EncryptionCodec([K2]).encode([PLAIN])
    unknown = await http.post("/codec/decode", content=body(other_key), headers=AUTH)
    assert unknown.status_code == 422 and "'k2'" in unknown.json()["error"]
    huge = await http.post("/codec/decode", content=b" " * (MAX_BODY_BYTES + 1), headers=AUTH)
    assert huge.status_code == 413


def test_no_routes_without_keys() -> None:
    assert build_codec_routes(codec_settings(payload_codec_keys=None)) == []


def test_loopback_web_ui_is_allowed_under_both_names() -> None:
    assert web_ui_origins("http://localhost:8233/") == ["http://localhost:8233", "http://127.0.0.1:8233"]
    assert web_ui_origins("https://temporal.example.com/ui") == ["https://temporal.example.com"]
