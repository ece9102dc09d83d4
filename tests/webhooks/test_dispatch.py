"""Webhooks end to end: real mail through a real upstream makes events; the gateway's own
dispatcher POSTs them to a real receiver, which checks the signatures with the
standardwebhooks library. Retries after 500s and timeouts, order per message, rotation,
auto-disable and replay, the SMTP2GO payload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from receiver import Received, Stall, running_receiver

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.i18n import translate_stored
from mailgate.webhooks import sender
from smtp_servers import SmtpServer

HOOKS = "/api/v1/webhooks"
FAST = {
    "run_workers": True,
    "queue_poll_seconds": 0.05,
    "webhook_allow_private": True,  # the receiver is on 127.0.0.1
    "webhook_poll_seconds": 0.05,
    "webhook_retry_schedule": [0.2],
    "webhook_timeout_seconds": 1.0,
    "webhook_disable_after_failures": 1000,
}


@contextmanager
def gateway(
    url: str, data_dir: Path, ca: Path, upstream: SmtpServer, **overrides: Any
) -> Iterator[tuple[LiveServer, Tenant]]:
    settings = make_settings(url, data_dir, ca, **{**FAST, **overrides})
    with serve(settings) as server, new_tenant(server) as tenant:
        created = tenant.client.post(
            "/api/v1/providers",
            json={
                "name": "upstream",
                "smtp_host": upstream.host,
                "smtp_port": upstream.port,
                "smtp_protocol": "none",
                "smtp_username": "unused",
                "smtp_password": "unused",
                "smtp_auth_method": "none",
            },
        )
        assert created.status_code == 201, created.text
        yield server, tenant


def add_hook(tenant: Tenant, url: str, events: list[str]) -> dict[str, Any]:
    answer = tenant.client.post(HOOKS, json={"url": url, "events": events})
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def send(tenant: Tenant, *to: str, subject: str = "Hello") -> str:
    answer = tenant.client.post(
        "/api/v1/messages",
        json={
            "from": {"email": "sender@example.com"},
            "to": [{"email": address} for address in to],
            "subject": subject,
            "text": "Hi",
        },
    )
    assert answer.status_code == 201, answer.text
    public_id: str = answer.json()["data"]["id"]
    return public_id


def deliveries(tenant: Tenant, hook_id: str) -> list[dict[str, Any]]:
    answer = tenant.client.get(f"{HOOKS}/{hook_id}/deliveries", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["data"]
    return items


def wait_for_log(
    tenant: Tenant, hook_id: str, check: Any, seconds: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        items = deliveries(tenant, hook_id)
        if check(items):
            return items
        assert time.monotonic() < deadline, items
        time.sleep(0.05)


def of_message(requests: list[Received], message_id: str) -> list[Received]:
    return [r for r in requests if r.json["data"]["message_id"] == message_id]


def test_events_arrive_signed_and_in_order_per_message(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(fresh_database_url, tmp_path, tls_ca_bundle, smtp_rejecting) as (_, tenant),
    ):
        hook = add_hook(tenant, receiver.url, ["processed", "delivered", "bounce"])
        secret = hook["secret"]
        assert secret.startswith("whsec_")
        sent = [send(tenant, f"to{n}@example.com", subject=f"n{n}") for n in range(3)]
        bounced = send(tenant, "reject-me@example.com")
        seen = receiver.wait_for(lambda r: len(r) >= 8)

        assert all(r.verifies_with(secret) for r in seen)
        assert not any(r.verifies_with("whsec_" + "A" * 43 + "=") for r in seen)
        assert len({r.webhook_id for r in seen}) == 8
        for message_id in sent:
            kinds = [r.json["type"] for r in of_message(seen, message_id)]
            assert kinds == ["processed", "delivered"], kinds
        [processed, bounce] = of_message(seen, bounced)
        assert processed.json["type"] == "processed"
        assert bounce.json["type"] == "bounce"
        data = bounce.json["data"]
        assert data["recipient"] == "reject-me@example.com"
        assert data["smtp_code"] == 550 and data["bounce_class"] == "hard"
        assert data["subject"] == "Hello" and data["from"] == "sender@example.com"
        assert seen[0].headers["content-type"] == "application/json"

        log = wait_for_log(
            tenant,
            hook["id"],
            lambda items: len(items) == 8 and all(i["status"] == "delivered" for i in items),
        )
        assert {item["attempts"] for item in log} == {1}
        assert {item["id"] for item in log} == {r.webhook_id for r in seen}


def test_retries_after_500_and_timeout_keep_the_id_and_the_order(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(fresh_database_url, tmp_path, tls_ca_bundle, smtp_rejecting) as (_, tenant),
    ):
        hook = add_hook(tenant, receiver.url, ["processed", "delivered"])
        receiver.script.extend([500, Stall(3.0)])  # the 1st POST: 500; the 2nd: no answer
        message_id = send(tenant, "someone@example.com")
        seen = receiver.wait_for(lambda r: sum(x.answered == 200 for x in r) >= 2)

        mine = of_message(seen, message_id)
        assert [(r.json["type"], r.answered) for r in mine] == [
            ("processed", 500),
            ("processed", None),
            ("processed", 200),
            ("delivered", 200),
        ]
        assert len({r.webhook_id for r in mine[:3]}) == 1  # one delivery, retried
        assert mine[3].webhook_id != mine[0].webhook_id
        assert all(r.verifies_with(hook["secret"]) for r in mine)

        log = wait_for_log(
            tenant,
            hook["id"],
            lambda items: len(items) == 2 and all(i["status"] == "delivered" for i in items),
        )
        by_type = {item["event_type"]: item for item in log}
        assert by_type["processed"]["attempts"] == 3
        assert by_type["processed"]["status"] == "delivered"
        assert by_type["processed"]["last_status_code"] == 200
        assert by_type["delivered"]["attempts"] == 1


def test_rotation_signs_with_both_secrets_until_the_old_one_expires(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(fresh_database_url, tmp_path, tls_ca_bundle, smtp_rejecting) as (_, tenant),
    ):
        hook = add_hook(tenant, receiver.url, ["processed"])
        old = hook["secret"]
        send(tenant, "a@example.com")
        [first] = receiver.wait_for(lambda r: len(r) >= 1)
        assert first.verifies_with(old)

        rotated = tenant.client.post(f"{HOOKS}/{hook['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["data"]["secret"]
        assert new.startswith("whsec_") and new != old
        assert rotated.json()["data"]["secret_rotation"]["previous_secret_valid_until"]
        shown = tenant.client.get(f"{HOOKS}/{hook['id']}").json()["data"]
        assert "secret" not in shown and old not in str(shown) and new not in str(shown)

        send(tenant, "b@example.com")
        second = receiver.wait_for(lambda r: len(r) >= 2)[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 2
        assert second.verifies_with(old) and second.verifies_with(new)
        assert not first.verifies_with(new)


def test_rotation_with_no_overlap_signs_with_the_new_secret_only(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(
            fresh_database_url,
            tmp_path,
            tls_ca_bundle,
            smtp_rejecting,
            webhook_secret_overlap_hours=0,
        ) as (_, tenant),
    ):
        hook = add_hook(tenant, receiver.url, ["processed"])
        new = tenant.client.post(f"{HOOKS}/{hook['id']}/rotate-secret").json()["data"]["secret"]
        send(tenant, "a@example.com")
        [only] = receiver.wait_for(lambda r: len(r) >= 1)
        assert only.verifies_with(new) and not only.verifies_with(hook["secret"])


def test_sustained_failure_disables_then_enable_and_replay(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(
            fresh_database_url,
            tmp_path,
            tls_ca_bundle,
            smtp_rejecting,
            webhook_disable_after_failures=3,
            webhook_disable_after_hours=0.5 / 3600,
        ) as (_, tenant),
    ):
        receiver.default = 503
        hook = add_hook(tenant, receiver.url, ["processed", "delivered"])
        send(tenant, "a@example.com")
        deadline = time.monotonic() + 30
        while True:
            shown = tenant.client.get(f"{HOOKS}/{hook['id']}").json()["data"]
            if not shown["enabled"]:
                break
            assert time.monotonic() < deadline, shown
            time.sleep(0.05)
        assert shown["consecutive_failures"] >= 3
        assert "503" in shown["disabled_reason"]
        log = deliveries(tenant, hook["id"])
        assert {item["status"] for item in log} == {"failed"}
        assert all(item["last_error"] for item in log)
        tried = len(receiver.requests)
        time.sleep(0.5)
        assert len(receiver.requests) == tried  # nothing more is sent while disabled

        processed = next(item for item in log if item["event_type"] == "processed")
        refused = tenant.client.post(f"{HOOKS}/{hook['id']}/deliveries/{processed['id']}/replay")
        assert refused.status_code == 409, refused.text

        receiver.default = 200
        enabled = tenant.client.post(f"{HOOKS}/{hook['id']}/enable").json()["data"]
        assert enabled["enabled"] and enabled["disabled_reason"] is None
        assert enabled["consecutive_failures"] == 0
        replayed = tenant.client.post(f"{HOOKS}/{hook['id']}/deliveries/{processed['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        receiver.wait_for(lambda r: any(x.answered == 200 for x in r))
        done = wait_for_log(
            tenant,
            hook["id"],
            lambda items: any(
                i["id"] == processed["id"] and i["status"] == "delivered" for i in items
            ),
        )
        again = [r for r in receiver.requests if r.answered == 200]
        assert again[0].webhook_id == processed["id"]  # the same id as before: receivers dedupe
        assert again[0].verifies_with(hook["secret"])
        assert len(done) == len(log)


def test_the_test_endpoint_sends_a_marked_event(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(fresh_database_url, tmp_path, tls_ca_bundle, smtp_rejecting) as (_, tenant),
    ):
        hook = add_hook(tenant, receiver.url, ["delivered"])
        queued = tenant.client.post(f"{HOOKS}/{hook['id']}/test")
        assert queued.status_code == 202, queued.text
        [ping] = receiver.wait_for(lambda r: len(r) >= 1)
        assert ping.json["test"] is True and ping.json["type"] == "delivered"
        assert ping.webhook_id == queued.json()["data"]["id"]
        assert ping.verifies_with(hook["secret"])


def test_smtp2go_webhooks_get_smtp2go_payloads(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    with (
        running_receiver() as receiver,
        gateway(fresh_database_url, tmp_path, tls_ca_bundle, smtp_rejecting) as (server, tenant),
    ):
        added = tenant.client.post(
            "/v3/webhook/add",
            json={"api_key": tenant.key, "url": receiver.url, "events": ["delivered", "bounce"]},
        )
        assert added.status_code == 200, added.text
        secret = added.json()["data"]["secret"]
        message_id = send(tenant, "ok@example.com", "reject-this@example.com", subject="Order")
        seen = receiver.wait_for(lambda r: len(r) >= 2)
        by_event = {r.json["event"]: r for r in seen}
        assert set(by_event) == {"delivered", "bounce"}
        assert all(r.verifies_with(secret) for r in seen)
        delivered = by_event["delivered"].json
        assert delivered["email_id"] == message_id
        assert delivered["rcpt"] == "ok@example.com"
        assert delivered["sender"] == "sender@example.com"
        assert delivered["from"] == "sender@example.com"
        assert delivered["subject"] == "Order"
        assert sorted(delivered["recipients"]) == ["ok@example.com", "reject-this@example.com"]
        assert delivered["time"].endswith("Z") and delivered["sendtime"].endswith("Z")
        bounce = by_event["bounce"].json
        assert bounce["bounce"] == "hard" and bounce["rcpt"] == "reject-this@example.com"
        assert "550" in bounce["context"]
        assert server.base_url  # the gateway was the sender


def test_private_targets_are_refused_again_at_send_time() -> None:
    """A URL saved while private targets were allowed is checked again before each POST."""
    with running_receiver() as receiver:

        async def go() -> sender.Outcome:
            async with sender.new_client(2.0) as client:
                return await sender.post(
                    client,
                    url=receiver.url.replace("127.0.0.1", "localhost"),
                    message_id="whmsg_x",
                    payload={"type": "processed"},
                    secrets=["whsec_" + "A" * 43 + "="],
                    allow_private=False,
                    timeout_seconds=2.0,
                )

        outcome = asyncio.run(go())
        assert outcome.status_code is None
        assert "localhost" in str(translate_stored(outcome.error, "en"))
        assert "non-public" in str(translate_stored(outcome.error, "en"))
        assert receiver.requests == []
