"""VERP return paths: they round-trip, survive case folding, refuse anything not ours, and keep
resolving across a key rotation."""

from __future__ import annotations

import base64
import hmac
import re

import pytest

from mailgate.services.verp import Verp

KEY = "first-secret-key-material"
NEWER = "second-secret-key-material"
DOMAIN = "bounces.example.com"


@pytest.mark.parametrize("message_id", [1, 35, 36, 4242, 2**31 - 1, 2**63 - 1])
def test_round_trip(message_id: int) -> None:
    verp = Verp([KEY], DOMAIN)

    address = verp.return_path(message_id)

    local, _, domain = address.partition("@")
    assert domain == DOMAIN
    assert re.fullmatch(r"bounces\+[0-9a-z]+-[a-z2-7]{10}", local)
    assert len(local) < 64
    assert address == address.lower()
    assert verp.message_for(address) == message_id


def test_addresses_differ_per_message_and_per_key() -> None:
    verp = Verp([KEY], DOMAIN)

    assert verp.return_path(1) != verp.return_path(2)
    assert verp.return_path(1) != Verp([NEWER], DOMAIN).return_path(1)
    assert verp.return_path(7) == Verp([KEY], DOMAIN).return_path(7)  # stable


def test_case_and_brackets_do_not_matter() -> None:
    verp = Verp([KEY], "Bounces.Example.COM.")
    address = verp.return_path(987654)

    assert address.endswith("@bounces.example.com")
    assert verp.message_for(address.upper()) == 987654
    assert verp.message_for(f" <{address}> ") == 987654
    assert verp.message_for(address.replace("@bounces.example.com", "@BOUNCES.example.com.")) == (
        987654
    )


def test_the_raw_secret_is_not_the_mac_key() -> None:
    address = Verp([KEY], DOMAIN).return_path(10)  # 10 is "a" in base 36
    with_raw_secret = hmac.digest(KEY.encode(), b"a", "sha256")

    assert base64.b32encode(with_raw_secret[:10]).decode().lower()[:10] not in address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "@",
        "garbage",
        "bounces@bounces.example.com",
        "bounces+@bounces.example.com",
        "bounces+1@bounces.example.com",
        "bounces+1-@bounces.example.com",
        "bounces+-abcdefghij@bounces.example.com",
        "bounces+0a-abcdefghij@bounces.example.com",
        "bounces+a-abcdefghij@bounces.example.com",  # right shape, wrong mac
        "bounces+a-abcdefghij-x@bounces.example.com",
        "bounces+zzzzzzzzzzzzzzzzzzzzzzzzzz-abcdefghij@bounces.example.com",
        "someone@example.com",
        "bounces+\u00e9-abcdefghij@bounces.example.com",
        "bounces+a-abcdefgh1j@bounces.example.com",  # 1 is not base 32
    ],
)
def test_garbage_is_not_ours(address: str) -> None:
    assert Verp([KEY], DOMAIN).message_for(address) is None


def test_wrong_domain_or_tampered_mac_or_id() -> None:
    verp = Verp([KEY], DOMAIN)
    address = verp.return_path(4242)
    local, _, _ = address.partition("@")
    token = local.removeprefix("bounces+")
    id36, mac = token.split("-")
    flipped = ("b" if mac[0] == "a" else "a") + mac[1:]

    assert verp.message_for(f"{local}@other.example.com") is None
    assert verp.message_for(f"{local}@sub.{DOMAIN}") is None
    assert verp.message_for(f"bounces+{id36}-{flipped}@{DOMAIN}") is None
    assert verp.message_for(f"bounces+{id36}1-{mac}@{DOMAIN}") is None  # another id, same mac
    assert verp.message_for(f"other+{token}@{DOMAIN}") is None
    assert Verp([NEWER], DOMAIN).message_for(address) is None


def test_key_rotation_keeps_old_addresses_working() -> None:
    before = Verp([KEY], DOMAIN)
    after = Verp([NEWER, KEY], DOMAIN)  # newest first, as Settings.secret_keys() gives them
    retired = Verp([NEWER], DOMAIN)
    old_address = before.return_path(55)

    assert after.message_for(old_address) == 55
    assert after.return_path(55) == retired.return_path(55)  # the newest key signs
    assert after.return_path(55) != old_address
    assert retired.message_for(old_address) is None
    assert before.message_for(after.return_path(56)) is None


@pytest.mark.parametrize(
    ("keys", "domain"), [([], DOMAIN), ([""], DOMAIN), ([KEY], ""), ([KEY], "a@b")]
)
def test_bad_configuration_is_refused(keys: list[str], domain: str) -> None:
    with pytest.raises(ValueError):
        Verp(keys, domain)


@pytest.mark.parametrize("message_id", [0, -1])
def test_only_real_row_ids(message_id: int) -> None:
    with pytest.raises(ValueError):
        Verp([KEY], DOMAIN).return_path(message_id)
