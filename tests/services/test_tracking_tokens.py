"""Tracking tokens: compact, URL-safe, tamper-proof, bound to their kind, across key rotation."""

from __future__ import annotations

import random
import re

import pytest

from mailgate.services.tracking_tokens import MAX_URL_BYTES, TokenKind, TrackingSigner

SIGNER = TrackingSigner(["first-secret"])
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_open_and_unsubscribe_tokens_are_short_and_url_safe() -> None:
    for kind in (TokenKind.OPEN, TokenKind.UNSUBSCRIBE):
        token = SIGNER.make(kind, message_id=123_456_789, recipient="Person@Example.com")
        assert URL_SAFE.fullmatch(token) and len(token) <= 32
        read = SIGNER.read(token, kind)
        assert read is not None and read.message_id == 123_456_789 and read.url is None
        # the address is not in the token, only a keyed digest of it (case-insensitive)
        assert read.recipient_digest == SIGNER.recipient_digest("person@example.com")
        assert b"person" not in token.encode().lower()


def test_a_click_token_holds_its_url() -> None:
    url = "https://shop.example.com/p?id=1&ref=mail#top"
    token = SIGNER.make(TokenKind.CLICK, message_id=7, recipient="a@b.example", url=url)
    read = SIGNER.read(token, TokenKind.CLICK)
    assert read is not None and read.url == url


@pytest.mark.parametrize("kind", [TokenKind.OPEN, TokenKind.UNSUBSCRIBE])
def test_a_token_is_only_good_for_its_own_kind(kind: TokenKind) -> None:
    token = SIGNER.make(TokenKind.CLICK, message_id=7, recipient="a@b.example", url="https://x.y/")
    assert SIGNER.read(token, kind) is None
    other = SIGNER.make(kind, message_id=7, recipient="a@b.example")
    assert SIGNER.read(other, TokenKind.CLICK) is None


def test_every_single_character_change_is_refused() -> None:
    token = SIGNER.make(TokenKind.CLICK, message_id=42, recipient="a@b.example", url="https://x.y/")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index in range(len(token)):
        for replacement in {alphabet[(alphabet.index(token[index]) + 1) % 64], "A"}:
            changed = token[:index] + replacement + token[index + 1 :]
            if changed == token:
                continue
            read = SIGNER.read(changed, TokenKind.CLICK)
            # base64's last character may carry unused bits: same bytes, same meaning
            assert read is None or (read.url == "https://x.y/" and read.message_id == 42)
    assert SIGNER.read(token[:-1], TokenKind.CLICK) is None
    assert SIGNER.read(token + "A", TokenKind.CLICK) is None


@pytest.mark.parametrize("text", ["", "x", "not a token!", "%00" * 10, "A" * 4000, "é" * 30])
def test_garbage_is_refused(text: str) -> None:
    assert SIGNER.read(text, TokenKind.OPEN) is None


def test_tokens_signed_before_a_key_rotation_still_verify() -> None:
    old = SIGNER.make(TokenKind.OPEN, message_id=5, recipient="a@b.example")
    rotated = TrackingSigner(["second-secret", "first-secret"])
    read = rotated.read(old, TokenKind.OPEN)
    assert read is not None and read.key_index == 1
    assert read.recipient_digest == rotated.recipient_digest("a@b.example", read.key_index)
    assert TrackingSigner(["someone-else"]).read(old, TokenKind.OPEN) is None


def test_urls_too_long_to_sign_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        SIGNER.make(
            TokenKind.CLICK, message_id=1, recipient="a@b.c", url="https://x/" + "a" * MAX_URL_BYTES
        )
    with pytest.raises(ValueError):
        SIGNER.make(TokenKind.OPEN, message_id=1, recipient="a@b.c", url="https://x/")
    with pytest.raises(ValueError):
        SIGNER.make(TokenKind.OPEN, message_id=0, recipient="a@b.c")
    with pytest.raises(ValueError):
        TrackingSigner([])


def test_round_trip() -> None:
    chance = random.Random(5)  # fixed: the same cases every run
    for _ in range(500):
        message_id = chance.choice([1, 127, 128, 2**31, 2**63 - 1, chance.randrange(1, 2**40)])
        recipient = f"{chance.randbytes(4).hex()}.É@Exämple.com"
        path = "".join(chr(chance.randrange(32, 0x3000)) for _ in range(chance.randrange(60)))
        url = "https://example.com/" + path
        token = SIGNER.make(TokenKind.CLICK, message_id=message_id, recipient=recipient, url=url)
        read = SIGNER.read(token, TokenKind.CLICK)
        assert read is not None
        assert (read.message_id, read.url) == (message_id, url)
        assert read.recipient_digest == SIGNER.recipient_digest(recipient.upper())
