"""Stats match the events real mail produced: three messages through two providers to a real
upstream that accepts some recipients, refuses one (550) and defers one (451), a suppressed
recipient, and open/click/spam/unsubscribe/soft-bounce events recorded afterwards. Both
surfaces answer the same counts before and after the events are rolled up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conftest import LiveServer, Tenant, make_settings, new_tenant, serve
from mailgate.services.stats_rollup import roll_up
from mailgate.store.db import Database
from mailgate.store.models import Event, Message
from smtp_servers import SmtpServer

ZERO = {
    "processed": 0,
    "delivered": 0,
    "deferred": 0,
    "bounce": 0,
    "hard_bounce": 0,
    "soft_bounce": 0,
    "reject": 0,
    "failed": 0,
    "cancelled": 0,
    "spam": 0,
    "unsubscribe": 0,
    "open": 0,
    "click": 0,
}


def counts(**values: int) -> dict[str, int]:
    return {**ZERO, **values}


@dataclass
class Scene:
    server: LiveServer
    tenant: Tenant
    provider_a: str
    provider_b: str
    messages: list[str]  # public ids: news (a), news+promo (b), billing (b)
    started: datetime


def wait_until_sent(tenant: Tenant, public_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        data: dict[str, Any] = tenant.client.get(f"/api/v1/messages/{public_id}").json()["data"]
        if data["status"] not in ("queued", "scheduled"):
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def add_provider(tenant: Tenant, name: str, upstream: SmtpServer) -> str:
    created = tenant.client.post(
        "/api/v1/providers",
        json={
            "name": name,
            "smtp_host": upstream.host,
            "smtp_port": upstream.port,
            "smtp_protocol": "none",
            "smtp_username": "unused",
            "smtp_password": "unused",
            "smtp_auth_method": "none",
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["id"])


def send(tenant: Tenant, sender: str, to: list[str], provider: str, tags: list[str]) -> str:
    answer = tenant.client.post(
        "/api/v1/messages",
        json={
            "from": {"email": sender},
            "to": [{"email": address} for address in to],
            "subject": "Numbers",
            "text": "Counted.",
            "provider_id": provider,
            "tags": tags,
        },
    )
    assert answer.status_code in (200, 201, 202), answer.text
    return str(answer.json()["data"]["id"])


def record(server: LiveServer, public_id: str, *kinds: tuple[str, str | None, bool]) -> None:
    """Engagement events as the tracking, complaint and DSN intake record them:
    (type, bounce_class, carries the message's provider)."""

    async def work(session: Any) -> None:
        message = (
            await session.execute(select(Message).where(Message.public_id == public_id))
        ).scalar_one()
        for kind, bounce_class, with_provider in kinds:
            session.add(
                Event(
                    account_id=message.account_id,
                    message_id=message.id,
                    type=kind,
                    recipient="ok2@example.net",
                    provider_id=message.last_provider_id if with_provider else None,
                    bounce_class=bounce_class,
                    created_at=datetime.now(UTC),
                )
            )
        await session.commit()

    server.run(work)


def recorded(server: LiveServer, account_id: int) -> dict[str, int]:
    """The account's events as the events table has them, counted by type and class."""

    async def work(session: Any) -> dict[str, int]:
        rows = await session.execute(
            select(Event.type, Event.bounce_class, func.count())
            .where(Event.account_id == account_id)
            .group_by(Event.type, Event.bounce_class)
        )
        found = counts()
        for kind, bounce_class, number in rows:
            found[kind] += number
            if bounce_class:
                found[f"{bounce_class}_bounce"] += number
        return found

    return server.run(work)  # type: ignore[no-any-return]


def sizes(server: LiveServer, public_ids: list[str]) -> list[int]:
    async def work(session: Any) -> list[int]:
        rows = await session.execute(
            select(Message.size).where(Message.public_id.in_(public_ids)).order_by(Message.id)
        )
        return [size for (size,) in rows]

    return server.run(work)  # type: ignore[no-any-return]


def roll_everything_up(url: str) -> None:
    async def go() -> None:
        database = Database(url)
        try:
            for _ in range(3):  # PostgreSQL rolls up what a previous pass saw settle
                await roll_up(database, batch=4)
        finally:
            await database.dispose()

    asyncio.run(go())


@pytest.fixture
def scene(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> Iterator[Scene]:
    settings = make_settings(
        fresh_database_url,
        tmp_path,
        tls_ca_bundle,
        run_workers=True,
        stats_rollup_seconds=0,  # the test rolls up itself, between two identical readings
        stats_cycle_max=1000,
    )
    started = datetime.now(UTC)
    with serve(settings) as server, new_tenant(server) as tenant:
        a = add_provider(tenant, "a", smtp_rejecting)
        b = add_provider(tenant, "b", smtp_rejecting)
        news = send(
            tenant,
            "news@example.com",
            ["ok1@example.net", "reject1@example.net", "defer1@example.net"],
            a,
            ["news"],
        )
        assert wait_until_sent(tenant, news)["status"] == "deferred"
        both = send(
            tenant, "news@example.com", ["ok2@example.net", "ok3@example.net"], b, ["news", "promo"]
        )
        assert wait_until_sent(tenant, both)["status"] == "delivered"
        # reject1 hard-bounced above, so it is suppressed now: refused at accept time
        billing = send(
            tenant, "Billing@Example.org", ["reject1@example.net", "ok4@example.net"], b, []
        )
        assert wait_until_sent(tenant, billing)["status"] == "partial"
        record(server, both, ("open", None, True), ("open", None, True), ("click", None, True))
        record(server, both, ("unsubscribe", None, False), ("bounce", "soft", True))
        record(server, news, ("spam", None, False))
        yield Scene(server, tenant, a, b, [news, both, billing], started)


EXPECTED = counts(
    processed=3,
    delivered=4,
    deferred=1,
    bounce=2,
    hard_bounce=1,
    soft_bounce=1,
    reject=1,
    spam=1,
    unsubscribe=1,
    open=2,
    click=1,
)


def native(scene: Scene, **params: Any) -> dict[str, Any]:
    query = {"start": (scene.started - timedelta(hours=1)).isoformat(), **params}
    answer = scene.tenant.client.get("/api/v1/stats", params=query)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["meta"]["request_id"]
    data: dict[str, Any] = body["data"]
    return data


def smtp2go(scene: Scene, endpoint: str, **body: Any) -> dict[str, Any]:
    with httpx.Client(base_url=scene.server.base_url, timeout=30) as client:
        answer = client.post(
            f"/v3/stats/{endpoint}", content=json.dumps({"api_key": scene.tenant.key, **body})
        )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def every_answer(scene: Scene) -> dict[str, Any]:
    a = scene.provider_a
    return {
        "hourly": native(scene, interval="hour"),
        "daily": native(scene),
        "providers": native(scene, group_by="provider", interval="hour"),
        "only_a": native(scene, provider=a),
        "tags": native(scene, group_by="tag"),
        "promo": native(scene, tag="promo", interval="hour"),
        "promo_by_provider": native(scene, tag="news", group_by="provider"),
        **{
            name: smtp2go(scene, f"email_{name}")
            for name in ("bounces", "spam", "unsubs", "cycle", "summary")
        },
        "history": smtp2go(scene, "email_history"),
        "history_domains": smtp2go(scene, "email_history", group_by="domain"),
    }


def check(scene: Scene, answers: dict[str, Any]) -> None:
    assert recorded(scene.server, scene.tenant.account_id) == EXPECTED

    hourly = answers["hourly"]
    assert hourly["interval"] == "hour" and hourly["group_by"] is None
    assert hourly["totals"] == EXPECTED
    [group] = hourly["groups"]
    assert group["provider_id"] is None and group["tag"] is None
    busy = [bucket for bucket in group["series"] if bucket["counts"] != ZERO]
    this_hour = scene.started.replace(minute=0, second=0, microsecond=0)
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert {bucket["start"] for bucket in busy} <= {
        this_hour.strftime("%Y-%m-%dT%H:00:00Z"),
        now_hour.strftime("%Y-%m-%dT%H:00:00Z"),
    }
    summed = counts()
    for bucket in group["series"]:
        for key, number in bucket["counts"].items():
            summed[key] += number
    assert summed == EXPECTED
    starts = [datetime.fromisoformat(b["start"]) for b in group["series"]]
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(starts))

    daily = answers["daily"]
    assert daily["totals"] == EXPECTED
    assert all(b["start"].endswith("T00:00:00Z") for b in daily["groups"][0]["series"])

    providers = {g["provider_id"]: g["totals"] for g in answers["providers"]["groups"]}
    assert providers == {
        scene.provider_a: counts(delivered=1, bounce=1, hard_bounce=1, deferred=1),
        scene.provider_b: counts(delivered=3, open=2, click=1, bounce=1, soft_bounce=1),
        None: counts(processed=3, reject=1, spam=1, unsubscribe=1),
    }
    assert answers["providers"]["totals"] == EXPECTED
    assert answers["only_a"]["totals"] == providers[scene.provider_a]

    tags = {g["tag"]: g["totals"] for g in answers["tags"]["groups"]}
    both = counts(processed=1, delivered=2, open=2, click=1, unsubscribe=1, bounce=1, soft_bounce=1)
    news_only = counts(processed=1, delivered=1, bounce=1, hard_bounce=1, deferred=1, spam=1)
    assert tags == {"promo": both, "news": {k: both[k] + news_only[k] for k in ZERO}}
    assert answers["tags"]["totals"] == EXPECTED  # all the mail, untagged too, each once
    assert answers["promo"]["totals"] == both
    by_provider = {g["provider_id"]: g["totals"] for g in answers["promo_by_provider"]["groups"]}
    assert by_provider[scene.provider_a] == counts(delivered=1, bounce=1, hard_bounce=1, deferred=1)

    # SMTP2GO: emails = recipients an upstream answered for (4 delivered + 2 bounced)
    assert answers["bounces"] == {
        "emails": 6,
        "rejects": 1,
        "softbounces": 1,
        "hardbounces": 1,
        "bounce_percent": "33.33",
    }
    assert answers["spam"] == {"emails": 6, "rejects": 1, "spams": 1, "spam_percent": "16.67"}
    assert answers["unsubs"] == {
        "emails": 6,
        "rejects": 1,
        "unsubscribes": 1,
        "unsubscribe_percent": "16.67",
    }
    cycle = answers["cycle"]
    assert (cycle["cycle_used"], cycle["cycle_max"], cycle["cycle_remaining"]) == (6, 1000, 994)
    month = datetime.now(UTC).strftime("%Y-%m-01 00:00:00+00:00")
    assert cycle["cycle_start"] == month
    summary = answers["summary"]
    assert {k: summary[k] for k in cycle} == cycle
    assert (summary["email_count"], summary["hardbounces"], summary["softbounces"]) == (6, 1, 1)
    assert (summary["opens"], summary["clicks"], summary["rejects"]) == (2, 1, 1)
    assert (summary["spam_emails"], summary["unsubscribes"]) == (1, 1)
    assert summary["bounce_percent"] == "33.33" and summary["spam_percent"] == "16.67"

    news_size, both_size, billing_size = sizes(scene.server, scene.messages)
    history = answers["history"]
    assert history["count"] == 6
    rows = {row["email_address"]: row for row in history["history"]}
    assert set(rows) == {"news@example.com", "billing@example.org"}
    news = rows["news@example.com"]
    assert (news["used"], news["bytecount"]) == (5, news_size + both_size)
    assert news["avgsize"] == round((news_size + both_size) / 2, 2)
    assert (news["bounces"], news["opens"], news["clicks"], news["spam"]) == (2, 2, 1, 1)
    assert (news["unsubscribes"], news["rejects"], news["bounce_percent"]) == (1, 0, 40.0)
    billing = rows["billing@example.org"]
    assert (billing["used"], billing["rejects"], billing["bytecount"]) == (1, 1, billing_size)
    assert history["bounce_percent_total"] == 33.33
    domains = {row["domain"]: row["used"] for row in answers["history_domains"]["history"]}
    assert domains == {"example.com": 5, "example.org": 1}


def test_stats_match_the_events_and_survive_the_rollup(scene: Scene) -> None:
    before = every_answer(scene)
    check(scene, before)

    roll_everything_up(scene.server.database_url)
    after = every_answer(scene)
    check(scene, after)
    assert after == before

    # an event after the rollup is read from the events table, on top of the rolled-up rows
    record(scene.server, scene.messages[1], ("click", None, True))
    grown = native(scene)["totals"]
    assert grown == {**EXPECTED, "click": EXPECTED["click"] + 1}
