"""Proof of who made a decision: the front door that authenticated the person signs it.

A decision is signed with HMAC-SHA256 under `DECISION_SIGNING_KEY`, over every field that
matters (who, from where, on which request and plan hash, approve or reject, the comment,
when). The worker holds the same key and checks the proof before the workflow counts the
decision, so someone who can reach Temporal but does not hold the key cannot approve in
anyone's name. Pure functions: the workflow calls them through a local activity, the
front doors through `TicketService`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from core.models import Decision

# A signed decision older than this is refused: a captured payload cannot be replayed later.
MAX_DECISION_AGE = timedelta(hours=1)
# Clocks of the signer and the worker may disagree a little.
CLOCK_SKEW = timedelta(minutes=2)
SIGNATURE_PREFIX = "v1="


def digest(fields: dict[str, Any], key: bytes) -> str:
    """The proof of `fields` (JSON-able) under `key`: HMAC-SHA256 over their canonical JSON."""
    signed = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return SIGNATURE_PREFIX + hmac.new(key, signed, hashlib.sha256).hexdigest()


def proven(proof: str, fields: dict[str, Any], keys: list[bytes]) -> bool:
    """Whether `proof` is the proof of `fields` under one of `keys` (compared in constant time)."""
    # As bytes: `compare_digest` raises on text that is not ASCII, and a raw signal's proof may be any
    # text; the raise was retried for an hour, holding every later decision on the ticket (red team 19).
    given = proof.encode()
    return any(hmac.compare_digest(given, digest(fields, key).encode()) for key in keys)


def _signed_fields(decision: Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json", exclude={"proof"})


def _digest(decision: Decision, key: bytes) -> str:
    return digest(_signed_fields(decision), key)


def signed_by_a_front_door(decision: Decision, keys: list[bytes]) -> bool:
    """Whether `decision` carries a valid proof under one of `keys`, whatever its age."""
    return (
        bool(decision.proof)
        and decision.signed_at is not None
        and proven(decision.proof, _signed_fields(decision), keys)
    )


def sign_decision(decision: Decision, key: bytes, now: datetime) -> Decision:
    """`decision` stamped with the time and signed; what a front door sends."""
    stamped = decision.model_copy(update={"signed_at": now, "proof": ""})
    return stamped.model_copy(update={"proof": _digest(stamped, key)})


def proof_problem(decision: Decision, keys: list[bytes], now: datetime) -> str | None:
    """Why `decision` carries no valid proof under any of `keys`, or None when it does."""
    return signature_problem(decision.proof, decision.signed_at, _signed_fields(decision), keys, now, MAX_DECISION_AGE)


def signature_problem(
    proof: str, signed_at: datetime | None, fields: dict[str, Any], keys: list[bytes], now: datetime, max_age: timedelta
) -> str | None:
    """Why `proof` is not a valid proof of `fields`, signed at `signed_at`, at `now`; None when it is."""
    if not proof:
        return "unsigned"
    if signed_at is None:
        return "bad signature: no signing time"
    if not proven(proof, fields, keys):
        return "bad signature"
    if signed_at > now + CLOCK_SKEW:
        return "bad signature: signed in the future"
    if now - signed_at > max_age:
        return "signature expired"
    return None
