"""API key format and hashing.

A key looks like ``mg_<prefix>_<secret>``: ``mg_<prefix>`` is stored in clear and shown in
listings; the whole key is stored only as its SHA-256 (keys are 256-bit random, so a
fast hash is the right tool: nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["GeneratedKey", "generate_key", "hash_key", "key_prefix", "keys_match"]

SCHEME = "mg"


@dataclass(frozen=True)
class GeneratedKey:
    plaintext: str
    prefix: str
    digest: bytes

    def __repr__(self) -> str:
        return f"GeneratedKey(prefix={self.prefix!r})"


def generate_key() -> GeneratedKey:
    prefix = f"{SCHEME}_{secrets.token_hex(4)}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
    return GeneratedKey(plaintext=plaintext, prefix=prefix, digest=hash_key(plaintext))


def hash_key(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


def key_prefix(plaintext: str) -> str | None:
    """The stored prefix of a presented key, or None when it is not shaped like one of ours."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != SCHEME or not parts[1] or not parts[2]:
        return None
    return f"{parts[0]}_{parts[1]}"


def keys_match(plaintext: str, digest: bytes) -> bool:
    return hmac.compare_digest(hash_key(plaintext), digest)
