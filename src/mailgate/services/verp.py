"""VERP return paths: ``bounces+<id36>-<mac>@<bounce domain>`` ties a bounce to its message.

The token is the message's row id in base 36 and the first 10 base-32 characters (50 bits)
of an HMAC-SHA256 over it. Everything is lower-case, so an MTA that folds the local part's
case does not break it, and the local part stays under 40 characters (the limit is 64).

The MAC key is never a raw secret: each of ``Settings.secret_keys()`` is turned into a VERP
key with HMAC and a fixed label. The newest key signs; every key verifies, so addresses
handed out before a key rotation still resolve.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["VERP_PREFIX", "Verp"]

VERP_PREFIX: Final = "bounces+"
MAC_CHARS: Final = 10
_LABEL: Final = b"mailgate/verp/v1"  # distinguishes this key from every other use of a secret
_ALPHABET36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
# id: base 36 without leading zeros (one spelling per id); mac: RFC 4648 base-32, lower-cased.
_TOKEN: Final = re.compile(rf"([1-9a-z][0-9a-z]{{0,12}})-([a-z2-7]{{{MAC_CHARS}}})")


def _base36(number: int) -> str:
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET36[digit])
    return "".join(reversed(digits))


def _derive(secret: str) -> bytes:
    return hmac.digest(secret.encode("utf-8"), _LABEL, "sha256")


def _mac(key: bytes, id36: str) -> str:
    digest = hmac.digest(key, id36.encode("ascii"), "sha256")
    return base64.b32encode(digest[:10]).decode("ascii").lower()[:MAC_CHARS]


def _normalise_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


class Verp:
    """Makes and reads the VERP return paths of one bounce domain."""

    def __init__(self, keys: Sequence[str], domain: str) -> None:
        if not keys or not all(keys):
            raise ValueError("VERP needs at least one non-empty secret key")
        self._domain = _normalise_domain(domain)
        if not self._domain or "@" in self._domain:
            raise ValueError("the bounce domain must be a domain name")
        self._keys = tuple(_derive(key) for key in keys)

    @property
    def domain(self) -> str:
        return self._domain

    def return_path(self, message_id: int) -> str:
        """The envelope sender for one delivery of message row ``message_id``."""
        if message_id <= 0:
            raise ValueError("message ids are positive")
        id36 = _base36(message_id)
        return f"{VERP_PREFIX}{id36}-{_mac(self._keys[0], id36)}@{self._domain}"

    def message_for(self, address: str) -> int | None:
        """The message row id an address of ours names; None when the address is not a VERP
        address of this domain or its MAC does not verify under any key."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or _normalise_domain(domain) != self._domain:
            return None
        local = local.lower()
        if not local.startswith(VERP_PREFIX):
            return None
        token = _TOKEN.fullmatch(local, len(VERP_PREFIX))
        if token is None:
            return None
        id36, mac = token.groups()
        if not any(hmac.compare_digest(_mac(key, id36), mac) for key in self._keys):
            return None
        return int(id36, 36)
