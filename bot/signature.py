"""Signed decisions: the bot signs the review record it writes, and `review-bot gate` (or the bot itself,
before it trusts what a run's tags say) checks the signature with a public key.

Ed25519 over a canonical form of the signed tags (bot.tags.SIGNED and every per-vote tag) and the run
id. A tag added, removed or changed by anyone but the bot after signing breaks the signature, so an
`approved` written with the MLflow client is not an approval. The private key lives with the bot only
(REVIEW_SIGNING_KEY); pipelines need only the public keys (REVIEW_PUBLIC_KEYS; several, for rotation).

Pure: no MLflow, no clock. Lives beside bot.tags because both sides of the record use it: the
MLflow reads (bot.mlflow) and the gate (bot.votes.gate).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bot import tags
from bot.models import ReviewState

SCHEME = "ed25519"
CANONICAL_VERSION = 1


class BadKey(ValueError):
    """A key setting that is not a base64 Ed25519 key; the message says which and what to do."""


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BadKey(
            f"{what} is not a base64 Ed25519 key (32 bytes); make a pair with `review-bot keys generate`"
        )
    return raw


def private_key(text: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw(text, "REVIEW_SIGNING_KEY"))


def public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw(text, "a key in REVIEW_PUBLIC_KEYS"))


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key, written beside each signature so the gate picks the right one."""
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    private: str  # REVIEW_SIGNING_KEY: the bot only
    public: str  # REVIEW_PUBLIC_KEYS: the bot and every pipeline that runs the gate


def generate() -> KeyPair:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw()
    return KeyPair(private=base64.b64encode(raw).decode(), public=public_text(key.public_key()))


def canonical(run_id: str, run_tags: Mapping[str, str]) -> bytes:
    """The bytes signed: the run id and every signed tag the run has now, in a stable order."""
    signed = {k: v for k, v in run_tags.items() if tags.is_signed(k)}
    body = {"v": CANONICAL_VERSION, "run_id": run_id, "tags": signed}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = key.public_key()
        self.key_id = key_id(self.public)

    def sign(self, run_id: str, run_tags: Mapping[str, str]) -> str:
        """The value of tags.SIGNATURE for a run whose signed tags are `run_tags` (the others are ignored)."""
        signature = self._key.sign(canonical(run_id, run_tags))
        return f"{SCHEME}:{self.key_id}:{base64.b64encode(signature).decode()}"


class Verifier:
    """Checks a run's signature against trusted public keys."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    def problem(self, run_id: str, run_tags: Mapping[str, str]) -> str | None:
        """None when the run's signed tags carry a valid signature by a trusted key; else why not."""
        value = run_tags.get(tags.SIGNATURE, "")
        if not value:
            return "the decision is not signed by review-bot"
        scheme, _, rest = value.partition(":")
        kid, _, encoded = rest.partition(":")
        if scheme != SCHEME or not encoded:
            return "the decision is not signed by review-bot (its signature tag is malformed)"
        key = self._keys.get(kid)
        if key is None:
            return (
                f"the decision is signed with key {kid}, which is not in REVIEW_PUBLIC_KEYS "
                "(add the bot's public key there)"
            )
        try:
            key.verify(base64.b64decode(encoded, validate=True), canonical(run_id, run_tags))
        except (InvalidSignature, binascii.Error, ValueError):
            return "the decision is not signed by review-bot (its tags were changed after it was signed)"
        return None

    def review(self, run_id: str, run_tags: Mapping[str, str]) -> ReviewState | None:
        """The run's review as the bot can vouch for it: an unsigned or altered record reads as pending
        with no votes, and says why. Raises tags.UnreadableRecord for a vote tag it cannot read."""
        if tags.STATUS not in run_tags:
            return None
        return tags.review_from_tags(run_id, run_tags, self.problem(run_id, run_tags))


def verifier_for(public_keys: Iterable[str], signer: Signer | None = None) -> Verifier:
    keys = [public_key(text) for text in public_keys if text.strip()]
    if signer is not None:
        keys.append(signer.public)
    return Verifier(keys)
