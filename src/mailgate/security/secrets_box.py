"""Encryption of secrets at rest (provider passwords, OAuth tokens) with MultiFernet, and
keyed digests of data that may hold a secret.

Key material comes from settings (``MAILGATE_SECRET_KEY``, comma-separated to rotate:
the first key encrypts, every key decrypts) and is stretched to a Fernet key with SHA-256,
so any high-entropy string works as a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["SecretBox"]


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is required")
        self._fernet = MultiFernet([Fernet(self._derive(key)) for key in keys])
        self._digest_key = hashlib.sha256(b"mailgate digest\0" + keys[0].encode()).digest()

    @staticmethod
    def _derive(material: str) -> bytes:
        return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:  # wrong or rotated-away key: say so, never echo the data
            raise ValueError("stored secret cannot be decrypted with the configured keys") from exc

    def encrypt_optional(self, plaintext: str | None) -> bytes | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, token: bytes | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def digest(self, *parts: bytes) -> str:
        """HMAC-SHA256 (hex) of ``parts``, each length-prefixed, under the first key: a stored
        digest of a request body that carries a password cannot be brute-forced offline."""
        mac = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.hexdigest()
