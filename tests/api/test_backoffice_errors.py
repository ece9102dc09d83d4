"""Back Office error bodies: the language of messages, and the renderer on its own (429)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from starlette.requests import Request

from conftest import Tenant
from mailgate.api.backoffice.errors import CODES, render_error
from mailgate.api.problems import Kind, describe
from mailgate.errors import RateLimited
from mailgate.i18n import LOCALE_DIR, negotiate, translate

BASE = "/api/v2/mail/providers"
NOT_FOUND = "No provider with id {id}."
JA_CATALOG = LOCALE_DIR / "ja" / "LC_MESSAGES" / "mailgate.po"


def _ja_translation(msgid: str) -> str | None:
    """The Japanese catalog's translation of ``msgid``, or None when there is none."""
    if not JA_CATALOG.exists():
        return None
    with Path(JA_CATALOG).open("rb") as handle:
        message = read_po(handle, locale="ja").get(msgid)
    return str(message.string) if message is not None and message.string else None


def test_accept_language_picks_the_message_language(tenant: Tenant) -> None:
    response = tenant.client.get(f"{BASE}/424242", headers={"accept-language": "ja"})

    assert response.status_code == 404
    language = negotiate("ja")
    assert response.headers["content-language"] == language
    assert response.json() == {
        "error": {"code": "not_found", "message": translate(NOT_FOUND, language, {"id": "424242"})}
    }


def test_english_by_default(tenant: Tenant) -> None:
    response = tenant.client.get(f"{BASE}/424242")
    assert response.headers["content-language"] == "en"
    assert response.json()["error"]["message"] == "No provider with id 424242."


@pytest.mark.skipif(
    _ja_translation(NOT_FOUND) is None,
    reason=f"no Japanese translation of {NOT_FOUND!r} in {JA_CATALOG} (being written elsewhere)",
)
def test_japanese_message_differs_from_english(tenant: Tenant) -> None:
    response = tenant.client.get(f"{BASE}/424242", headers={"accept-language": "ja"})

    assert response.headers["content-language"] == "ja"
    message = response.json()["error"]["message"]
    assert message != "No provider with id 424242."
    assert "424242" in message


def test_validation_details_are_translated_too(tenant: Tenant) -> None:
    response = tenant.client.post(BASE, content=b'{"port": 0}', headers={"accept-language": "ja"})
    assert response.status_code == 400
    language = negotiate("ja")
    details = {d["field"]: d["message"] for d in response.json()["error"]["details"]}
    assert details["driver"] == translate("This field is required.", language)
    assert details["port"] == translate("Must be at least {ge}.", language, {"ge": 1})


def request() -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": BASE,
        "query_string": b"",
        "headers": [(b"accept-language", b"en-GB,en;q=0.8")],
    }
    return Request(scope)


def test_rate_limit_body() -> None:
    response = render_error(request(), describe(RateLimited(retry_after=30), "en"))

    assert response.status_code == 429
    assert json.loads(response.body) == {
        "error": {
            "code": "rate_limited",
            "message": "Rate limit exceeded. Retry in 30 seconds.",
            "retryAfter": 30,
        }
    }
    assert response.headers["content-language"] == "en"


def test_every_kind_has_a_code() -> None:
    assert set(CODES) == set(Kind)
