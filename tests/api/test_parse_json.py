"""``routing.parse_json``: orjson's speed, ``json``'s answers and errors."""

from __future__ import annotations

import json
import math

import pytest

from mailgate.api.routing import parse_json

SAME_AS_JSON = [
    b'{"from": {"email": "a@example.com"}, "to": [1, 2.5, true, null], "s": "\xc3\xa9"}',
    b'{"a": 1, "a": 2}',  # the last duplicate wins, as in json
    b'"\\ud800"',  # a lone surrogate: orjson refuses it, json reads it
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    '{"x": "\u00e9"}'.encode("utf-16"),  # UTF-16, which json detects
]


@pytest.mark.parametrize("raw", SAME_AS_JSON)
def test_reads_what_json_reads(raw: bytes) -> None:
    assert parse_json(raw) == json.loads(raw)


def test_nan_and_infinity_as_json_reads_them() -> None:
    assert math.isnan(parse_json(b"NaN"))
    assert parse_json(b"1e400") == math.inf


@pytest.mark.parametrize("raw", [b"{", b'{"a": 1,}', b"[1] x", b""])
def test_bad_json_raises_json_own_error(raw: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(raw)
    with pytest.raises(json.JSONDecodeError) as raised:
        parse_json(raw)
    assert (raised.value.msg, raised.value.pos) == (expected.value.msg, expected.value.pos)


def test_not_utf8_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_json(b'{"a": "\xff"}')
