"""SMTP user passwords: argon2id hashes (argon2-cffi), verified off the event loop.

People choose these passwords, so unlike API keys they get a slow, salted, memory-hard hash.
Hashing and verifying take tens of milliseconds of CPU: both run in a worker thread so the
event loop (HTTP and the SMTP listener) keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Verified", "generate_password", "hash_password", "verify_password"]

GENERATED_BYTES: Final = 24  # 192 random bits, 32 URL-safe characters

_HASHER: Final = PasswordHasher()  # argon2id with the library's RFC 9106 defaults


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_BYTES)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


@dataclass(frozen=True)
class Verified:
    """A verification's outcome; ``new_hash`` is set when the stored one should be replaced
    (hashed with older parameters than today's)."""

    ok: bool
    new_hash: str | None = None


@cache
def _decoy_hash() -> str:
    """A hash to verify against when there is no user, so that takes as long as a real check."""
    return _HASHER.hash(secrets.token_urlsafe(GENERATED_BYTES))


def _verify(stored: str | None, password: str) -> Verified:
    try:
        _HASHER.verify(stored or _decoy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Verified(ok=False)
    if stored is None:  # the decoy matched: impossible in practice, refused all the same
        return Verified(ok=False)
    new_hash = _HASHER.hash(password) if _HASHER.check_needs_rehash(stored) else None
    return Verified(ok=True, new_hash=new_hash)


async def verify_password(stored: str | None, password: str) -> Verified:
    """Check ``password`` against ``stored`` (``None``: no such user, still costs a check)."""
    return await asyncio.to_thread(_verify, stored, password)
