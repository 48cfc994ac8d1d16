"""The AES-GCM payload codec on its own: sealing, rotation, refusals, passthrough, settings."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from core.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_KEY,
    NONCE_BYTES,
    EncryptionCodec,
    PayloadDecryptionError,
    UnknownEncryptionKey,
)
from core.codec_keys import CodecKey
from core.models import TicketRequest
from core.settings import ConfigError, load_settings
from service.temporal import data_converter
from tests.codec.keys import K1, K2, keys_setting

SECRET = b'{"text":"refund invoice 4471 for jane@example.com"}'


def plain(data: bytes = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec([K1])
    [sealed] = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID_KEY] == b"k1"
    assert b"jane@example.com" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the inner metadata is sealed too
    assert await codec.decode([sealed]) == [plain()]


async def test_every_payload_gets_a_fresh_nonce() -> None:
    codec = EncryptionCodec([K1])
    first, second = await codec.encode([plain(), plain()])
    assert first.data[:NONCE_BYTES] != second.data[:NONCE_BYTES]
    assert first.data != second.data


async def test_rotation_keeps_old_payloads_readable_and_seals_new_ones_with_the_new_key() -> None:
    [old] = await EncryptionCodec([K1]).encode([plain(b'"old"')])
    rotated = EncryptionCodec([K2, K1])
    [new] = await rotated.encode([plain(b'"new"')])
    assert new.metadata[KEY_ID_KEY] == b"k2"
    assert await rotated.decode([old, new]) == [plain(b'"old"'), plain(b'"new"')]
    with pytest.raises(UnknownEncryptionKey):
        await EncryptionCodec([K1]).decode([new])


async def test_unknown_key_id_is_refused_with_a_clear_message() -> None:
    [sealed] = await EncryptionCodec([K2]).encode([plain()])
    with pytest.raises(UnknownEncryptionKey, match=r"key id 'k2'.*PAYLOAD_CODEC_KEYS \(known: k1\)"):
        await EncryptionCodec([K1]).decode([sealed])


async def test_altered_or_relabelled_payloads_fail_authentication() -> None:
    codec = EncryptionCodec([K1, K2])
    [sealed] = await codec.encode([plain()])
    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_KEY: b"k2"}, data=sealed.data)
    same_id_other_key = EncryptionCodec([CodecKey("k1", K2.key)])
    for codec_used, payload in ((codec, tampered), (codec, relabelled), (same_id_other_key, sealed)):
        with pytest.raises(PayloadDecryptionError, match="failed authentication"):
            await codec_used.decode([payload])


async def test_payloads_from_before_encryption_pass_through() -> None:
    codec = EncryptionCodec([K1])
    unencrypted = [plain(), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(unencrypted) == unencrypted


async def test_project_converter_encrypts_only_when_keys_are_set() -> None:
    request = TicketRequest(text="upgrade acme-corp to the pro plan", requester="dave")
    off = data_converter(load_settings(_env_file=None, payload_codec_keys=None))
    assert off is pydantic_data_converter
    on = data_converter(load_settings(_env_file=None, payload_codec_keys=keys_setting(K1)))
    [payload] = await on.encode([request])
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING and b"acme-corp" not in payload.data
    assert await on.decode([payload], [TicketRequest]) == [request]


def test_keys_come_from_the_environment_current_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLOAD_CODEC_KEYS", f" {keys_setting(K2)} , {keys_setting(K1)} ")
    settings = load_settings(_env_file=None)
    assert [key.id for key in settings.codec_keys] == ["k2", "k1"]
    assert settings.codec_keys[0].key == K2.key
    assert base64.b64encode(K2.key).decode() not in repr(settings)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("k1:not-base64!", "not valid base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "must be 32 bytes"),
        (f"{keys_setting(K1)},{keys_setting(CodecKey('k1', K2.key))}", "listed more than once"),
        (base64.b64encode(bytes(32)).decode(), "id:base64key"),
        ("bad id:" + base64.b64encode(bytes(32)).decode(), "key id must be"),
    ],
)
def test_bad_keys_are_a_config_error_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"PAYLOAD_CODEC_KEYS: .*{problem}") as raised:
        load_settings(_env_file=None, payload_codec_keys=value)
    assert base64.b64encode(K2.key).decode() not in str(raised.value)


def test_short_codec_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CODEC_AUTH_TOKEN"):
        load_settings(_env_file=None, codec_auth_token="short")
