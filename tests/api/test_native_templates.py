"""Native /api/v1/templates: create, read, list and search, change, delete, preview; bad input
in the native error shape; permissions; and sending with template_id + template_data (one
message and batches), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import Tenant, new_tenant
from template_support import parts, stored_mime

URL = "/api/v1/templates"
MESSAGES = "/api/v1/messages"
WELCOME: dict[str, Any] = {
    "name": "welcome",
    "subject": "Welcome {{ user.name }}",
    "html_body": "<h1>Hi {{ user.name }}</h1><p>{{ note }}</p>",
    "text_body": "Hi {{ user.name }}. {{ note }}",
    "sample_data": {"user": {"name": "Sample"}, "note": "<b>sample</b>"},
    "tags": ["onboarding"],
}


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ok"] is True and body["meta"]["request_id"]
    data: dict[str, Any] = body["data"]
    return data


def create(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    return created(tenant.client.post(URL, json={**WELCOME, **overrides}))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def fields_of(error: dict[str, Any]) -> set[str]:
    return {item["field"] for item in error.get("errors") or []}


def message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": "sender@example.com"},
        "to": [{"email": "alice@example.com"}],
    }
    body.update(overrides)
    return body


def test_create_get_list_search_patch_delete(tenant: Tenant) -> None:
    made = create(tenant)
    assert made["id"].startswith("tmpl_")
    assert set(made) == {
        "id",
        "name",
        "subject",
        "html_body",
        "text_body",
        "sample_data",
        "tags",
        "created_at",
        "updated_at",
    }
    assert made["sample_data"] == WELCOME["sample_data"] and made["tags"] == ["onboarding"]
    other = create(tenant, name="Invoice", subject="Invoice {{ number }}", tags=["billing"])

    assert tenant.client.get(f"{URL}/{made['id']}").json()["data"] == made
    listed = tenant.client.get(URL).json()
    assert [t["id"] for t in listed["data"]] == [made["id"], other["id"]]
    assert "html_body" not in listed["data"][0]
    assert listed["pagination"] == {"has_more": False, "next_cursor": None}
    first = tenant.client.get(URL, params={"limit": 1}).json()
    assert first["pagination"]["has_more"] is True
    rest = tenant.client.get(URL, params={"cursor": first["pagination"]["next_cursor"]}).json()
    assert [t["id"] for t in rest["data"]] == [other["id"]]
    for query, expected in (
        ("INVOICE", [other["id"]]),  # name, any case
        ("welcome {{", [made["id"]]),  # subject
        ("billing", [other["id"]]),  # tag
        (made["id"], [made["id"]]),  # id
        ("100%_", []),  # LIKE wildcards are plain characters
    ):
        found = tenant.client.get(URL, params={"q": query}).json()["data"]
        assert [t["id"] for t in found] == expected, query

    patched = tenant.client.patch(
        f"{URL}/{made['id']}", json={"subject": "Hello {{ user.name }}", "tags": None}
    )
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert data["subject"] == "Hello {{ user.name }}" and data["tags"] == []
    assert data["html_body"] == WELCOME["html_body"] and data["updated_at"] >= made["updated_at"]
    cleared = tenant.client.patch(f"{URL}/{made['id']}", json={"text_body": None}).json()
    assert cleared["data"]["text_body"] == ""
    assert_error(
        tenant.client.patch(f"{URL}/{made['id']}", json={"name": None}), 400, "validation_error"
    )

    removed = tenant.client.delete(f"{URL}/{made['id']}")
    assert removed.status_code == 200 and removed.json()["data"] == {
        "deleted": True,
        "id": made["id"],
    }
    assert_error(tenant.client.get(f"{URL}/{made['id']}"), 404, "not_found")
    assert_error(tenant.client.delete(f"{URL}/{made['id']}"), 404, "not_found")
    assert_error(tenant.client.patch(f"{URL}/{made['id']}", json={}), 404, "not_found")


def test_names_are_unique_per_account_and_templates_private(
    tenant: Tenant, live_server: Any
) -> None:
    made = create(tenant)
    error = assert_error(tenant.client.post(URL, json=WELCOME), 409, "conflict")
    assert "welcome" in error["message"]
    second = create(tenant, name="second")
    renamed = tenant.client.patch(f"{URL}/{second['id']}", json={"name": "welcome"})
    assert_error(renamed, 409, "conflict")
    with new_tenant(live_server) as other:
        create(other)  # the same name in another account is fine
        assert_error(other.client.get(f"{URL}/{made['id']}"), 404, "not_found")
        assert other.client.get(URL, params={"q": "welcome"}).json()["data"][0]["id"] != made["id"]
        sent = other.client.post(MESSAGES, json=message(template_id=made["id"]))
        assert fields_of(assert_error(sent, 400, "validation_error")) == {"template_id"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x", "html_body": "<p>\n{% if %}</p>"}, {"html_body"}),
        ({"name": "x", "subject": "{{ unclosed"}, {"subject"}),
        ({"name": "x", "text_body": "{% include 'other' %}"}, {"text_body"}),
        ({"name": "x", "text_body": "{{ x|center(99) }}"}, {"text_body"}),  # no such filter here
        (
            {"name": "x", "html_body": "{% for %}", "text_body": "{% endif %}"},
            {"html_body", "text_body"},
        ),
        ({"name": "x\r\nBcc: a@b.c"}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 256}, {"name"}),
        ({"name": "x", "html_body": "x" * 512_001}, {"html_body"}),
        ({"name": "x", "sample_data": {"big": "x" * 70_000}}, {"sample_data"}),
        ({"name": "x", "tags": ["ok", "x" * 65]}, {"tags.1"}),
        ({"name": "x", "surprise": 1}, {"surprise"}),
        ({"name": 5}, {"name"}),
        ({"name": "x", "sample_data": [1, 2]}, {"sample_data"}),
        ({"subject": "no name"}, {"name"}),
    ],
)
def test_bad_templates_are_refused_with_the_field_and_nothing_is_stored(
    tenant: Tenant, body: dict[str, Any], fields: set[str]
) -> None:
    error = assert_error(tenant.client.post(URL, json=body), 400, "validation_error")
    assert fields_of(error) == fields, error
    assert tenant.client.get(URL).json()["data"] == []


def test_a_syntax_error_names_its_line(tenant: Tenant) -> None:
    response = tenant.client.post(
        URL, json={"name": "x", "html_body": "<p>one</p>\n<p>two</p>\n{% for x in %}"}
    )
    error = assert_error(response, 400, "validation_error")
    [item] = error["errors"]
    assert item["field"] == "html_body" and "line 3" in item["message"], item


def test_bad_requests_never_500(tenant: Tenant) -> None:
    made = create(tenant)
    assert_error(
        tenant.client.post(
            URL, content=b'{"name": "\xff\xfe"}', headers={"content-type": "application/json"}
        ),
        400,
        "validation_error",
    )
    assert_error(tenant.client.post(URL, content=b"[]"), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"cursor": "nonsense"}), 400, "validation_error")
    assert_error(tenant.client.get(URL, params={"limit": 0}), 400, "validation_error")
    assert_error(tenant.client.get(f"{URL}/tmpl_{'0' * 24}"), 404, "not_found")
    preview = tenant.client.post(f"{URL}/{made['id']}/preview", json={"data": "text"})
    assert_error(preview, 400, "validation_error")


def test_preview_renders_with_data_or_the_sample(tenant: Tenant) -> None:
    made = create(tenant)
    sample = tenant.client.post(f"{URL}/{made['id']}/preview")
    assert sample.status_code == 200, sample.text
    assert sample.json()["data"] == {
        "subject": "Welcome Sample",
        "html": "<h1>Hi Sample</h1><p>&lt;b&gt;sample&lt;/b&gt;</p>",
        "text": "Hi Sample. <b>sample</b>",
    }
    given = tenant.client.post(
        f"{URL}/{made['id']}/preview", json={"data": {"user": {"name": "Ann\r\nBcc: x@y.z"}}}
    ).json()["data"]
    # the subject stays one line; missing variables (note) render empty
    assert given == {
        "subject": "Welcome Ann Bcc: x@y.z",
        "html": "<h1>Hi Ann\r\nBcc: x@y.z</h1><p></p>",
        "text": "Hi Ann\r\nBcc: x@y.z. ",
    }
    empty = tenant.client.post(f"{URL}/{made['id']}/preview", json={"data": {}}).json()["data"]
    assert empty == {"subject": "Welcome", "html": "<h1>Hi </h1><p></p>", "text": "Hi . "}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ 'x' * 10**9 }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ],
)
def test_hostile_templates_preview_as_a_clear_400(tenant: Tenant, source: str) -> None:
    made = create(tenant, text_body=source)
    response = tenant.client.post(f"{URL}/{made['id']}/preview", json={"data": {}})
    error = assert_error(response, 400, "validation_error")
    assert fields_of(error) == {"text_body"}


def test_permissions(tenant: Tenant) -> None:
    made = create(tenant)
    reader = tenant.key_with("templates:read")
    headers = {"Authorization": f"Bearer {reader}"}
    assert tenant.client.get(URL, headers=headers).status_code == 200
    assert tenant.client.post(f"{URL}/{made['id']}/preview", headers=headers).status_code == 200
    assert_error(tenant.client.post(URL, json=WELCOME, headers=headers), 403, "forbidden")
    assert_error(tenant.client.delete(f"{URL}/{made['id']}", headers=headers), 403, "forbidden")
    nothing = {"Authorization": f"Bearer {tenant.key_with('messages:send')}"}
    assert_error(tenant.client.get(URL, headers=nothing), 403, "forbidden")


def test_idempotent_create_replays_the_first_answer(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "tmpl-create-1"}
    first = created(tenant.client.post(URL, json=WELCOME, headers=headers))
    again = created(tenant.client.post(URL, json=WELCOME, headers=headers))
    assert again["id"] == first["id"]
    assert len(tenant.client.get(URL).json()["data"]) == 1


# --- sending with a template ---------------------------------------------------------------


def test_send_with_a_template_stores_the_rendered_parts(tenant: Tenant) -> None:
    made = create(tenant)
    data = {"user": {"name": "Zoë <Z>"}, "note": "a & b"}
    sent = created(
        tenant.client.post(MESSAGES, json=message(template_id=made["id"], template_data=data))
    )
    assert sent["subject"] == "Welcome Zoë <Z>"
    subject, html, text = parts(stored_mime(tenant.server, sent["id"]))
    assert subject == "Welcome Zoë <Z>"
    assert html is not None and "<h1>Hi Zoë &lt;Z&gt;</h1><p>a &amp; b</p>" in html
    assert text is not None and text.strip() == "Hi Zoë <Z>. a & b"

    # what the request gives wins over the template's part
    own = created(
        tenant.client.post(
            MESSAGES,
            json=message(subject="Own subject", text="Own text", template_id=made["id"]),
        )
    )
    subject, html, text = parts(stored_mime(tenant.server, own["id"]))
    assert subject == "Own subject" and text is not None and text.strip() == "Own text"
    assert html is not None and "<h1>Hi </h1>" in html


def test_a_header_injection_through_the_subject_stays_one_line(tenant: Tenant) -> None:
    made = create(tenant, subject="Hi {{ name }}")
    evil = {"name": "x\r\nBcc: victim@example.net\r\n\r\nbody"}
    sent = created(
        tenant.client.post(MESSAGES, json=message(template_id=made["id"], template_data=evil))
    )
    mime = stored_mime(tenant.server, sent["id"])
    assert "Bcc" not in mime and mime["Subject"] == "Hi x Bcc: victim@example.net body"


def test_send_refusals_name_the_field(tenant: Tenant) -> None:
    made = create(tenant)
    unknown = tenant.client.post(MESSAGES, json=message(template_id="tmpl_missing", to=[]))
    error = assert_error(unknown, 400, "validation_error")
    assert fields_of(error) == {"template_id", "to"}  # every problem at once
    assert "tmpl_missing" in error["errors"][0]["message"]
    orphan = tenant.client.post(MESSAGES, json=message(subject="s", text="t", template_data={}))
    assert fields_of(assert_error(orphan, 400, "validation_error")) == {"template_data"}
    bare = tenant.client.post(MESSAGES, json=message(text="t"))
    assert fields_of(assert_error(bare, 400, "validation_error")) == {"subject"}
    wrong = tenant.client.post(MESSAGES, json=message(template_id=made["id"], template_data="x"))
    assert fields_of(assert_error(wrong, 400, "validation_error")) == {"template_data"}
    hostile = create(tenant, name="hostile", text_body="{{ x.__class__ }}")
    failing = tenant.client.post(
        MESSAGES, json=message(template_id=hostile["id"], template_data={"x": 1})
    )
    assert fields_of(assert_error(failing, 400, "validation_error")) == {"template_data"}
    assert tenant.client.get(MESSAGES).json()["data"] == []  # nothing half-written


def test_batch_sends_render_each_message(tenant: Tenant) -> None:
    made = create(tenant)
    batch = [
        message(template_id=made["id"], template_data={"user": {"name": "One"}}),
        message(subject="Plain", text="no template"),
        message(template_id=made["id"], template_data={"user": {"name": "Three"}}),
    ]
    response = tenant.client.post(f"{MESSAGES}/batch", json={"messages": batch})
    assert response.status_code == 201, response.text
    items = response.json()["data"]
    assert [i["subject"] for i in items] == ["Welcome One", "Plain", "Welcome Three"]
    subject, _, text = parts(stored_mime(tenant.server, items[2]["id"]))
    assert subject == "Welcome Three" and text is not None and text.startswith("Hi Three")

    bad = [message(template_id=made["id"]), message(template_id="tmpl_nope"), message(to=[])]
    refused = tenant.client.post(f"{MESSAGES}/batch", json={"messages": bad})
    assert fields_of(assert_error(refused, 400, "validation_error")) == {
        "messages.1.template_id",
        "messages.2.to",  # every problem at once
        "messages.2.text",
        "messages.2.subject",
    }
    single = tenant.client.post(
        f"{MESSAGES}/batch", json={"messages": [message(template_id="nope")]}
    )
    assert fields_of(assert_error(single, 400, "validation_error")) == {"messages.0.template_id"}
    assert len(tenant.client.get(MESSAGES).json()["data"]) == 3  # the refused batches wrote nothing


def test_an_edited_template_is_rendered_in_its_new_version(tenant: Tenant) -> None:
    made = create(tenant)
    first = created(tenant.client.post(MESSAGES, json=message(template_id=made["id"])))
    tenant.client.patch(f"{URL}/{made['id']}", json={"subject": "Changed {{ user.name }}"})
    second = created(
        tenant.client.post(
            MESSAGES, json=message(template_id=made["id"], template_data={"user": {"name": "B"}})
        )
    )
    assert first["subject"] == "Welcome" and second["subject"] == "Changed B"
