"""Fixed test keys in the `PAYLOAD_CODEC_KEYS` format."""

from __future__ import annotations

from core.codec_keys import CodecKey, new_codec_key_entry

K1 = CodecKey("k1", bytes(range(32)))
K2 = CodecKey("k2", bytes(range(100, 132)))
TOKEN = "codec-token-for-tests-0123456789"


def keys_setting(*keys: CodecKey) -> str:
    return ",".join(new_codec_key_entry(key.id, key.key) for key in keys)
