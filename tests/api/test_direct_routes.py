"""The direct routes (api/direct.py) answer exactly as FastAPI answers the same endpoints.

Two real servers share one database: one serves the sending endpoints directly, the other
sends every request through FastAPI. Each request, good or bad, goes to both; the answers
must match in status, headers that matter, and body (ids and times aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.domain import Permission

MESSAGE: dict[str, Any] = {
    "from": {"email": "sender@example.com", "name": "Sender"},
    "to": [{"email": "rcpt@example.net"}],
    "subject": "Parity",
    "text": "Hello",
}
SMTP2GO: dict[str, Any] = {
    "sender": "Sender <sender@example.com>",
    "to": ["rcpt@example.net"],
    "subject": "Parity",
    "text_body": "Hello",
}
# Differ from one message to the next (the size too: it counts the Message-ID).
VOLATILE = {"id", "request_id", "message_id", "email_id", "created_at", "updated_at", "size"}


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, tls_ca_bundle: Path
) -> Iterator[tuple[LiveServer, LiveServer]]:
    data = tmp_path_factory.mktemp("direct")
    url = f"sqlite+aiosqlite:///{data / 'mailgate.db'}"
    settings = make_settings(url, data, tls_ca_bundle, max_request_bytes=4096)
    with serve(settings) as direct, serve(settings, direct=False) as through_fastapi:
        yield direct, through_fastapi


@pytest.fixture(scope="module")
def tenant(servers: tuple[LiveServer, LiveServer]) -> Iterator[Tenant]:
    with new_tenant(servers[0]) as created:
        yield created


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "~" if k in VOLATILE else _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _answer(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    try:
        body = _stable(response.json())
    except json.JSONDecodeError:
        body = response.text
    kept = ("content-type", "retry-after", "x-ratelimit-limit", "idempotent-replayed")
    headers = {name: response.headers[name] for name in kept if name in response.headers}
    assert response.headers["x-request-id"].startswith("req_")
    return response.status_code, body, headers


def both(
    servers: tuple[LiveServer, LiveServer], method: str, path: str, **request: Any
) -> tuple[int, Any]:
    """The answer of each server, asserted equal; returns status and body."""
    answers = []
    for server in servers:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answers.append(_answer(client.request(method, path, **request)))
    assert answers[0] == answers[1]
    return answers[0][0], answers[0][1]


def _bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


@pytest.mark.parametrize(
    ("case", "content", "headers", "status"),
    [
        ("good", json.dumps(MESSAGE), {"Content-Type": "application/json"}, 201),
        ("no content type", json.dumps(MESSAGE), {}, 201),
        ("charset", json.dumps(MESSAGE), {"Content-Type": "application/json; charset=utf-8"}, 201),
        ("vendor json", json.dumps(MESSAGE), {"Content-Type": "application/vnd.x+json"}, 201),
        ("not json", "{from:", {"Content-Type": "application/json"}, 400),
        ("empty", "", {"Content-Type": "application/json"}, 400),
        ("text/plain", json.dumps(MESSAGE), {"Content-Type": "text/plain"}, 400),
        ("a list", "[1, 2]", {"Content-Type": "application/json"}, 400),
        ("bad utf-8", b'{"subject": "\xff"}', {"Content-Type": "application/json"}, 400),
        ("unknown field", json.dumps({**MESSAGE, "colour": 1}), {}, 400),
        ("bad address", json.dumps({**MESSAGE, "to": [{"email": "nope"}]}), {}, 400),
        ("crlf header", json.dumps({**MESSAGE, "headers": {"X-A": "1\r\nBcc: x@y"}}), {}, 400),
        ("too large", json.dumps({**MESSAGE, "text": "x" * 5000}), {}, 413),
        ("long idempotency key", json.dumps(MESSAGE), {"Idempotency-Key": "k" * 256}, 400),
    ],
)
def test_native_send_answers_alike(
    servers: tuple[LiveServer, LiveServer],
    tenant: Tenant,
    case: str,
    content: str | bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    got, body = both(
        servers,
        "POST",
        "/api/v1/messages",
        content=content,
        headers=_bearer(tenant.key, **headers),
    )
    assert got == status, (case, body)
    if status == 201:
        assert body["ok"] is True and body["data"]["status"] == "queued"
    else:
        assert body["ok"] is False and body["error"]["message"]


def test_authentication_and_permission_answer_alike(
    servers: tuple[LiveServer, LiveServer], tenant: Tenant
) -> None:
    path = "/api/v1/messages"
    assert both(servers, "POST", path, json=MESSAGE)[0] == 401
    assert both(servers, "POST", path, json=MESSAGE, headers=_bearer("mg_nope"))[0] == 401
    # Unparsable JSON is refused before the key is looked at, as FastAPI does.
    assert (
        both(servers, "POST", path, content="{", headers={"Content-Type": "application/json"})[0]
        == 400
    )
    reader = tenant.key_with(Permission.MESSAGES_READ)
    assert both(servers, "POST", path, json=MESSAGE, headers=_bearer(reader))[0] == 403


def test_an_idempotent_replay_answers_alike(
    servers: tuple[LiveServer, LiveServer], tenant: Tenant
) -> None:
    answers = []
    for index, server in enumerate(servers):  # a key of each: the two share the database
        headers = _bearer(tenant.key, **{"Idempotency-Key": f"parity-{index}"})
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            first = client.post("/api/v1/messages", json=MESSAGE, headers=headers)
            replayed = client.post("/api/v1/messages", json=MESSAGE, headers=headers)
            changed = {**MESSAGE, "subject": "x"}
            other = client.post("/api/v1/messages", json=changed, headers=headers)
        assert first.status_code == replayed.status_code == 201
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() == first.json()
        answers.append((_answer(replayed), _answer(other)))
    assert answers[0] == answers[1]
    assert answers[0][1][0] == 409


def test_batch_answers_alike(servers: tuple[LiveServer, LiveServer], tenant: Tenant) -> None:
    path = "/api/v1/messages/batch"
    good = {"messages": [MESSAGE, MESSAGE]}
    status, body = both(servers, "POST", path, json=good, headers=_bearer(tenant.key))
    assert status == 201 and len(body["data"]) == 2
    bad = {"messages": [MESSAGE, {**MESSAGE, "to": [{"email": "nope"}]}]}
    status, body = both(servers, "POST", path, json=bad, headers=_bearer(tenant.key))
    assert status == 400
    assert [e["field"] for e in body["error"]["errors"]] == ["messages.1.to.0.email"]


@pytest.mark.parametrize(
    ("case", "content", "headers", "status"),
    [
        ("key in body, no content type", {**SMTP2GO, "api_key": "{key}"}, {}, 200),
        ("key in header", SMTP2GO, {"X-Smtp2go-Api-Key": "{key}"}, 200),
        ("form-labelled json", SMTP2GO, {"X-Smtp2go-Api-Key": "{key}", "Content-Type": "a/b"}, 200),
        ("no key", SMTP2GO, {}, 401),
        ("bad sender", {**SMTP2GO, "sender": "nope"}, {"X-Smtp2go-Api-Key": "{key}"}, 400),
        ("not json", "{", {"X-Smtp2go-Api-Key": "{key}"}, 400),
    ],
)
def test_smtp2go_send_answers_alike(
    servers: tuple[LiveServer, LiveServer],
    tenant: Tenant,
    case: str,
    content: dict[str, Any] | str,
    headers: dict[str, str],
    status: int,
) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    got, body = both(
        servers,
        "POST",
        "/v3/email/send",
        content=text.replace("{key}", tenant.key),
        headers={k: v.replace("{key}", tenant.key) for k, v in headers.items()},
    )
    assert got == status, (case, body)
    if status == 200:
        assert body["data"]["succeeded"] == 1


def test_a_rate_limited_send_answers_alike(tmp_path: Path, tls_ca_bundle: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
    settings = make_settings(url, tmp_path, tls_ca_bundle, api_rate_limit="2/minute")
    with (
        serve(settings) as direct,
        serve(settings, direct=False) as through_fastapi,
        new_tenant(direct) as tenant,  # each server counts the key on its own
    ):
        answers = []
        for server in (direct, through_fastapi):
            with httpx.Client(base_url=server.base_url, headers=_bearer(tenant.key)) as client:
                sent = [client.post("/api/v1/messages", json=MESSAGE) for _ in range(3)]
            assert [s.status_code for s in sent] == [201, 201, 429]
            assert [s.headers["x-ratelimit-remaining"] for s in sent] == ["1", "0", "0"]
            assert 1 <= int(sent[2].headers["retry-after"]) <= 60
            limited = sent[2]
            answers.append((limited.json()["error"]["code"], limited.headers["x-ratelimit-limit"]))
        assert answers[0] == answers[1] == ("rate_limited", "2")
