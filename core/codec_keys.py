"""Parsing the payload encryption keys from settings, kept apart from the cipher itself.

`PAYLOAD_CODEC_KEYS="k2:<base64>,k1:<base64>"`: the first key encrypts new payloads, every
listed key decrypts, so a key can be rotated without losing the histories it protected.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and the id that payloads name it by; the key itself never shows in a repr."""

    id: str
    key: bytes = field(repr=False)


def parse_codec_keys(text: str) -> tuple[CodecKey, ...]:
    """`id:base64key` entries separated by commas, current key first.

    Raises `ValueError` with a message that names the offending entry by position and id,
    never by its key material.
    """
    keys: list[CodecKey] = []
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not separator or not key_id or not encoded:
            raise ValueError(f"entry {position} must look like id:base64key")
        if not KEY_ID_PATTERN.match(key_id):
            raise ValueError(f"entry {position}: key id must be 1-64 letters, digits, '_', '.' or '-'")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256) once decoded, not {len(key)}")
        if any(existing.id == key_id for existing in keys):
            raise ValueError(f"key id {key_id!r} is listed more than once")
        keys.append(CodecKey(id=key_id, key=key))
    return tuple(keys)


def new_codec_key_entry(key_id: str, key: bytes) -> str:
    """The `id:base64key` text for one key, as `PAYLOAD_CODEC_KEYS` expects it."""
    return f"{key_id}:{base64.b64encode(key).decode()}"
