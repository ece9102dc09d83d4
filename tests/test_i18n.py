"""Languages of human-readable messages: the Japanese catalog covers every msgid in the code,
``negotiate`` picks the language, and each surface answers in the language asked for."""

from __future__ import annotations

import string
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

import mailgate
from conftest import Tenant
from mailgate.errors import SmtpConnectionError, Unauthenticated
from mailgate.i18n import (
    LOCALE_DIR,
    N_,
    negotiate,
    stored_message,
    translate,
    translate_stored,
)
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer

PACKAGE = Path(mailgate.__file__).parent
JA_CATALOG = LOCALE_DIR / "ja" / "LC_MESSAGES" / "mailgate.po"
TEMPLATE = LOCALE_DIR / "mailgate.pot"
NO_PROVIDER = "No provider with id {id}."
REQUIRED = "This field is required."


def extracted() -> dict[str, list[str]]:
    """Every msgid marked in the package (``N_`` and Babel's default keywords), with where."""
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(PACKAGE),
        method_map=[("**.py", "python")],
        keywords={**DEFAULT_KEYWORDS, "N_": None},
    ):
        assert isinstance(message, str), f"{filename}:{lineno}: plural forms are not used"
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def load(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale="ja" if path == JA_CATALOG else None, domain="mailgate")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


MSGIDS = extracted()


def test_extraction_finds_the_marked_messages() -> None:
    assert len(MSGIDS) >= 50
    for msgid in (NO_PROVIDER, REQUIRED, Unauthenticated.message, SmtpConnectionError.message):
        assert msgid in MSGIDS


@pytest.mark.parametrize("msgid", sorted(MSGIDS))
def test_every_msgid_has_a_japanese_translation(msgid: str) -> None:
    message = load(JA_CATALOG).get(msgid)
    where = ", ".join(MSGIDS[msgid])
    assert message is not None, f"{msgid!r} ({where}) is not in {JA_CATALOG}"
    assert isinstance(message.string, str) and message.string.strip(), f"{msgid!r} is empty"
    assert placeholders(message.string) == placeholders(msgid), (msgid, message.string)
    assert any(ord(c) > 0x3000 for c in message.string), f"{message.string!r} is not Japanese"
    assert translate(msgid, "ja") == message.string


def test_the_catalog_and_the_template_match_the_code() -> None:
    catalog = load(JA_CATALOG)
    assert not catalog.fuzzy
    assert {m.id for m in catalog if m.id} == set(MSGIDS)
    assert [m.id for m in catalog if m.id and m.fuzzy] == []
    assert list(catalog.obsolete) == []
    assert {m.id for m in load(TEMPLATE) if m.id} == set(MSGIDS)


def test_n_marks_without_translating() -> None:
    assert N_("Some text {x}.") == "Some text {x}."


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ja", "ja"),
        ("ja-JP", "ja"),
        ("ja-JP,en;q=0.5", "ja"),
        ("en-US,ja;q=0.9", "en"),
        ("en;q=0.5, ja;q=0.8", "ja"),
        ("fr", "en"),
        ("fr-CA,ja;q=0.3", "ja"),
        ("*", "en"),
        ("@@ not a tag ;;", "en"),
        ("ja;q=0", "en"),
        ("ja;q=0, en", "en"),
        ("ja;q=nonsense", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_negotiate(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_unknown_language_and_missing_params_fall_back() -> None:
    assert translate(NO_PROVIDER, "xx", {"id": "7"}) == "No provider with id 7."
    assert translate(NO_PROVIDER, "ja", {"id": "7"}) != "No provider with id 7."
    assert "7" in translate(NO_PROVIDER, "ja", {"id": "7"})


def test_stored_messages_are_said_in_the_readers_language() -> None:
    kept = stored_message(SmtpConnectionError.message, {"detail": "refused"})
    assert translate_stored(kept, "en") == "Could not connect to the SMTP server: refused"
    assert translate_stored(kept, "ja") == translate(
        SmtpConnectionError.message, "ja", {"detail": "refused"}
    )
    for plain in (None, "", "Some older text.", "{not json", '{"other": 1}'):
        assert translate_stored(plain, "ja") == plain


# --- through the live server: one error per surface -----------------------------------

JA = {"accept-language": "ja"}


def both(msgid: str, **params: Any) -> tuple[str, str]:
    """``msgid`` in Japanese and in English; they must differ for the test to mean anything."""
    japanese, english = translate(msgid, "ja", params), translate(msgid, "en", params)
    assert japanese != english
    return japanese, english


def test_native_not_found(tenant: Tenant) -> None:
    japanese, english = both(NO_PROVIDER, id="dprov_x")
    response = tenant.client.get("/api/v1/providers/dprov_x", headers=JA)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == japanese
    response = tenant.client.get("/api/v1/providers/dprov_x")
    assert response.json()["error"]["message"] == english


def test_mailsage_not_found(tenant: Tenant) -> None:
    japanese, english = both(NO_PROVIDER, id="999999")
    response = tenant.client.put("/api/v1/smtp/configs/999999", json={"name": "x"}, headers=JA)
    assert response.status_code == 404
    body = response.json()
    # ``error`` is MailSage's fixed English title; ``message`` is the explanation.
    assert (body["error"], body["code"], body["message"]) == ("Not found", "not_found", japanese)
    response = tenant.client.put("/api/v1/smtp/configs/999999", json={"name": "x"})
    assert response.json()["message"] == english


def test_backoffice_not_found(tenant: Tenant) -> None:
    japanese, english = both(NO_PROVIDER, id="999999")
    response = tenant.client.get("/api/v2/mail/providers/999999", headers=JA)
    assert response.status_code == 404
    assert response.headers["content-language"] == "ja"
    assert response.json()["error"]["message"] == japanese
    response = tenant.client.get("/api/v2/mail/providers/999999")
    assert response.headers["content-language"] == "en"
    assert response.json()["error"]["message"] == english


def test_docspace_missing_host(tenant: Tenant) -> None:
    japanese, english = both(REQUIRED)
    body = {"senderAddress": "portal@example.com"}
    response = tenant.client.post("/api/2.0/smtpsettings/smtp", json=body, headers=JA)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["errors"] == [{"field": "host", "code": "required", "message": japanese}]
    assert error["message"] == f"host: {japanese}"
    response = tenant.client.post("/api/2.0/smtpsettings/smtp", json=body)
    assert response.json()["error"]["errors"][0]["message"] == english


def test_smtp2go_without_a_key(tenant: Tenant) -> None:
    japanese, english = both(Unauthenticated.message)
    url = tenant.server.base_url + "/v3/api_keys/permissions"
    response = httpx.post(url, json={}, headers=JA)
    assert response.status_code == 401
    assert response.json()["data"]["error"] == japanese
    assert httpx.post(url, json={}).json()["data"]["error"] == english


# --- success messages and stored messages ------------------------------------------------


def test_native_test_success_message_is_translated(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    body = {
        "name": "Starttls",
        "smtp_host": smtp_starttls.host,
        "smtp_port": smtp_starttls.port,
        "smtp_protocol": "starttls",
        "smtp_username": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
    }
    pid = tenant.client.post("/api/v1/providers", json=body).json()["data"]["id"]
    japanese, english = both("Connection and authentication succeeded.")
    result = tenant.client.post(f"/api/v1/providers/{pid}/test", headers=JA).json()["data"]
    assert (result["success"], result["message"]) == (True, japanese)
    result = tenant.client.post(f"/api/v1/providers/{pid}/test").json()["data"]
    assert (result["success"], result["message"]) == (True, english)


def test_mailsage_documented_success_message_stays_english(tenant: Tenant) -> None:
    body = {
        "name": "Primary SMTP",
        "host": "smtp.example.com",
        "port": 587,
        "username": "user",
        "password": "secret-password",
        "from_email": "noreply@example.com",
    }
    config_id = tenant.client.post("/api/v1/smtp/configs", json=body).json()["id"]
    response = tenant.client.delete(f"/api/v1/smtp/configs/{config_id}", headers=JA)
    assert response.status_code == 200
    assert response.json() == {"message": "SMTP configuration deleted successfully"}


def test_a_failed_test_reason_is_said_in_each_readers_language(
    tenant: Tenant, refused_port: int
) -> None:
    body = {
        "name": "Refused",
        "smtp_host": "127.0.0.1",
        "smtp_port": refused_port,
        "smtp_protocol": "none",
        "smtp_username": "user",
        "smtp_password": "secret-password",
    }
    created = tenant.client.post("/api/v1/providers", json=body).json()["data"]
    result = tenant.client.post(f"/api/v1/providers/{created['id']}/test", headers=JA).json()
    ja_prefix, en_prefix = both(SmtpConnectionError.message, detail="")
    assert result["data"]["success"] is False
    detail = result["data"]["message"].removeprefix(ja_prefix)
    assert detail and detail != result["data"]["message"]

    native = f"/api/v1/providers/{created['id']}"
    assert tenant.client.get(native, headers=JA).json()["data"]["status_reason"] == (
        ja_prefix + detail
    )
    assert tenant.client.get(native).json()["data"]["status_reason"] == en_prefix + detail
    listed = tenant.client.get("/api/v2/mail/providers").json()
    assert len(listed) == 1  # the tenant's one provider, by its Back Office (numeric) id
    backoffice = f"/api/v2/mail/providers/{listed[0]['id']}"
    reason = tenant.client.get(backoffice, headers=JA).json()["statusReason"]
    assert reason == ja_prefix + detail
    assert tenant.client.get(backoffice).json()["statusReason"] == en_prefix + detail


def test_a_docspace_test_job_error_is_said_in_each_readers_language(
    tenant: Tenant, refused_port: int
) -> None:
    settings = {
        "host": "127.0.0.1",
        "port": refused_port,
        "senderAddress": "portal@example.com",
        "enableSSL": False,
        "enableAuth": False,
    }
    url = "/api/2.0/smtpsettings/smtp"
    assert tenant.client.post(url, json=settings).status_code == 200
    assert tenant.client.get(url + "/test", headers=JA).status_code == 200
    deadline = time.monotonic() + 20
    while not (job := tenant.client.get(url + "/test/status").json()["response"])["completed"]:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)

    ja_prefix, en_prefix = both(SmtpConnectionError.message, detail="")
    english = job["error"]
    assert english.startswith(en_prefix) and len(english) > len(en_prefix)
    japanese = tenant.client.get(url + "/test/status", headers=JA).json()["response"]["error"]
    assert japanese == ja_prefix + english.removeprefix(en_prefix)
