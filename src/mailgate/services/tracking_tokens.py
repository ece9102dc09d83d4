"""Signed tokens in tracking and unsubscribe links: ``/t/o/<token>.gif``, ``/t/c/<token>``,
``/u/<token>``.

A token is URL-safe base64 (no padding) of::

    kind (1 byte) | message row id (LEB128) | recipient digest (6 bytes) | url (click only) | mac

The recipient digest is a keyed hash of the lower-cased address: the link names its
recipient without showing the address, and the address is found again among the message's
own recipients. The MAC (12 bytes of HMAC-SHA256) covers everything before it, kind
included, so an open token cannot be used to unsubscribe and a click token's target cannot
be changed: the redirect goes only where the signed token says (no open redirect).

Keys are derived from ``Settings.secret_keys()`` with a fixed label, as ``services.verp``
does: the newest key signs, every key verifies, so links sent before a rotation still work.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

__all__ = ["MAX_URL_BYTES", "TokenKind", "TrackingSigner", "TrackingToken"]

MAC_BYTES: Final = 12
DIGEST_BYTES: Final = 6
MAX_URL_BYTES: Final = 2048  # longer links are left as they are (not tracked)
_LABEL: Final = b"mailgate/tracking/v1"
_TOKEN_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{20,3000}")
_MAX_ID_BYTES: Final = 10  # LEB128 of a 64-bit id


class TokenKind(IntEnum):
    OPEN = 1
    CLICK = 2
    UNSUBSCRIBE = 3


@dataclass(frozen=True)
class TrackingToken:
    """What a verified token says. ``key_index``: which key signed it (its digest is keyed
    the same way)."""

    kind: TokenKind
    message_id: int
    recipient_digest: bytes
    url: str | None
    key_index: int


def _derive(secret: str) -> bytes:
    return hmac.digest(secret.encode("utf-8"), _LABEL, "sha256")


def _leb128(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_leb128(data: bytes, start: int) -> tuple[int, int]:
    """The number and the index after it; ValueError when it does not end in time."""
    number = shift = 0
    for index in range(start, min(len(data), start + _MAX_ID_BYTES)):
        number |= (data[index] & 0x7F) << shift
        shift += 7
        if not data[index] & 0x80:
            return number, index + 1
    raise ValueError("unterminated number")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrackingSigner:
    """Makes and reads the tokens of one deployment (its secret keys)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys or not all(keys):
            raise ValueError("tracking tokens need at least one non-empty secret key")
        self._keys = tuple(_derive(key) for key in keys)

    def recipient_digest(self, address: str, key_index: int = 0) -> bytes:
        key = self._keys[key_index]
        return hmac.digest(key, b"rcpt\0" + address.lower().encode("utf-8"), "sha256")[
            :DIGEST_BYTES
        ]

    def make(
        self, kind: TokenKind, *, message_id: int, recipient: str, url: str | None = None
    ) -> str:
        """A token; ``url`` for clicks only (at most MAX_URL_BYTES, else ValueError)."""
        if message_id <= 0:
            raise ValueError("message ids are positive")
        if (url is not None) != (kind is TokenKind.CLICK):
            raise ValueError("a click token needs a url; other tokens take none")
        target = (url or "").encode("utf-8")
        if len(target) > MAX_URL_BYTES:
            raise ValueError("the url is too long to track")
        data = bytes([kind]) + _leb128(message_id) + self.recipient_digest(recipient) + target
        return _b64(data + hmac.digest(self._keys[0], data, "sha256")[:MAC_BYTES])

    def read(self, text: str, kind: TokenKind) -> TrackingToken | None:
        """The token's content when it is well-formed, of ``kind`` and signed by one of our
        keys; None otherwise (a forged, truncated or altered token)."""
        if not _TOKEN_TEXT.fullmatch(text):
            return None
        try:
            raw = _unb64(text)
        except (binascii.Error, ValueError):
            return None
        data, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        signer = next(
            (
                index
                for index, key in enumerate(self._keys)
                if hmac.compare_digest(hmac.digest(key, data, "sha256")[:MAC_BYTES], mac)
            ),
            None,
        )
        if signer is None or not data or data[0] != kind:
            return None
        try:
            message_id, at = _read_leb128(data, 1)
            digest, rest = data[at : at + DIGEST_BYTES], data[at + DIGEST_BYTES :]
            url = rest.decode("utf-8") if kind is TokenKind.CLICK else None
        except (ValueError, UnicodeDecodeError):
            return None
        if len(digest) != DIGEST_BYTES or message_id <= 0 or (kind is not TokenKind.CLICK and rest):
            return None
        return TrackingToken(kind, message_id, digest, url, signer)
