"""Encrypting payloads before they reach Temporal's history: AES-256-GCM with key ids.

Ticket text, context rows and plans travel as workflow and activity payloads, so with this
codec on, Temporal (and anyone who can read its database) sees only ciphertext. Each payload
names the key that sealed it, so old histories stay readable after the current key rotates;
payloads written before the codec was switched on pass through untouched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from core.codec_keys import CodecKey

ENCODING_KEY = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_KEY = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(Exception):
    """An encrypted payload could not be opened; the message says which key and why."""


class UnknownEncryptionKey(PayloadDecryptionError):
    """The payload names a key id that is not configured (rotated out too early, or another deployment's)."""


class EncryptionCodec(PayloadCodec):
    """Seals each whole payload (metadata and data) with the current key; opens with any configured key."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise ValueError("EncryptionCodec needs at least one key")
        self._current_id = keys[0].id
        self._ciphers = {key.id: AESGCM(key.key) for key in keys}

    @property
    def current_key_id(self) -> str:
        return self._current_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(payload) for payload in payloads]

    def _seal(self, payload: Payload) -> Payload:
        key_id = self._current_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        # The key id is authenticated data: relabelling a payload with another key id is detected.
        sealed = self._ciphers[self._current_id].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={ENCODING_KEY: ENCRYPTED_ENCODING, KEY_ID_KEY: key_id}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING_KEY) != ENCRYPTED_ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_KEY)
        if not raw_id:
            raise PayloadDecryptionError(f"encrypted payload has no {KEY_ID_KEY} metadata")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers))
            raise UnknownEncryptionKey(
                f"payload was encrypted with key id {key_id!r}, which is not in PAYLOAD_CODEC_KEYS (known: {known})"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadDecryptionError(f"encrypted payload (key id {key_id!r}) is too short to hold a nonce")
        try:
            opened = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r} failed authentication: "
                "the configured key with that id is not the one that sealed it, or the payload was altered"
            ) from None
        return Payload.FromString(opened)
