"""The fan-out from the events table to the outbox, on a real database: late ids (committed
after a higher one was read) are still found while their gap is held, then given up; events
older than a webhook are not sent to it; with no webhooks the cursor just moves. Signing
agrees with the standardwebhooks library."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook as LibraryWebhook

from mailgate.security.secrets_box import SecretBox
from mailgate.services import accounts
from mailgate.services import webhooks as service
from mailgate.store.db import Database
from mailgate.store.models import Event, WebhookDelivery, WebhookFanoutCursor, utcnow
from mailgate.webhooks.fanout import Gap, fan_out, fill_gaps
from mailgate.webhooks.payloads import Flavour
from mailgate.webhooks.signing import new_secret, sign, signature_headers

SETTINGS = service.WebhookSettings(
    box=SecretBox([secrets.token_urlsafe(32)]),
    allow_private=False,
    secret_overlap=timedelta(hours=1),
    retry_for=timedelta(hours=24),
)


def test_fill_gaps_opens_splits_and_closes_ranges() -> None:
    gaps, last = fill_gaps([], 10, [11, 14, 15, 20], now=1.0)
    assert last == 20 and gaps == [Gap(12, 13, 1.0), Gap(16, 19, 1.0)]
    gaps, last = fill_gaps(gaps, last, [12, 17, 21], now=2.0)
    assert last == 21 and gaps == [Gap(13, 13, 1.0), Gap(16, 16, 1.0), Gap(18, 19, 1.0)]
    gaps, last = fill_gaps(gaps, last, [13, 16, 18, 19], now=3.0)
    assert (gaps, last) == ([], 21)


def test_signatures_agree_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    body = '{"type":"delivered","data":{"note":"Grüße"}}'.encode()
    library = LibraryWebhook(secret)
    when = utcnow().replace(microsecond=0)
    assert sign(secret, "whmsg_1", int(when.timestamp()), body) == library.sign(
        "whmsg_1", when, body.decode()
    )
    headers = signature_headers([new_secret(), secret], "whmsg_1", int(when.timestamp()), body)
    assert library.verify(body, headers) == {"type": "delivered", "data": {"note": "Grüße"}}


async def _setup(database: Database, *, with_hook: bool = True) -> tuple[int, int | None]:
    async with database.session() as session:
        account = await accounts.create_account(
            session=session, name="fanout", email="fanout@example.com"
        )
        hook_id = None
        if with_hook:
            created = await service.create_webhook(
                session=session,
                account_id=account.id,
                url="https://1.1.1.1/hook",
                event_types=["processed", "delivered"],
                description=None,
                flavour=Flavour.NATIVE,
                settings=SETTINGS,
            )
            hook_id = created.webhook.id
        return account.id, hook_id


async def _add_event(database: Database, account_id: int, event_id: int, kind: str) -> None:
    async with database.session() as session:
        session.add(Event(id=event_id, account_id=account_id, type=kind, created_at=utcnow()))
        await session.commit()


async def _pass(database: Database, hold: float = 60.0) -> int:
    return await database.write(
        partial(
            fan_out,
            now=utcnow(),
            batch=500,
            gap_hold=timedelta(seconds=hold),
            retry_for=timedelta(hours=24),
        )
    )


async def _outbox(database: Database) -> list[tuple[Any, ...]]:
    async with database.session() as session:
        rows = await session.execute(
            select(WebhookDelivery.event_id, WebhookDelivery.event_type).order_by(
                WebhookDelivery.event_id
            )
        )
        return [tuple(row) for row in rows]


async def _cursor(database: Database) -> WebhookFanoutCursor:
    async with database.session() as session:
        found: WebhookFanoutCursor = (
            await session.execute(select(WebhookFanoutCursor))
        ).scalar_one()
        return found


def test_a_late_id_is_found_while_its_gap_is_held(fresh_database_url: str) -> None:
    async def go() -> None:
        database = Database(fresh_database_url)
        try:
            account_id, _ = await _setup(database)
            await _add_event(database, account_id, 1, "processed")
            await _add_event(database, account_id, 4, "delivered")
            await _add_event(database, account_id, 5, "open")  # not subscribed
            assert await _pass(database) == 3
            assert await _outbox(database) == [(1, "processed"), (4, "delivered")]
            cursor = await _cursor(database)
            assert cursor.last_event_id == 5
            assert [g[:2] for g in cursor.gaps] == [[2, 3]]

            await _add_event(database, account_id, 3, "delivered")  # committed late
            assert await _pass(database) == 1
            assert (3, "delivered") in await _outbox(database)
            assert [g[:2] for g in (await _cursor(database)).gaps] == [[2, 2]]

            await _pass(database, hold=0)  # held long enough: 2 was never committed
            assert (await _cursor(database)).gaps == []
            await _add_event(database, account_id, 2, "processed")  # too late now
            await _pass(database)
            assert len(await _outbox(database)) == 3
            assert await _pass(database) == 0
        finally:
            await database.dispose()

    asyncio.run(go())


def test_no_webhooks_moves_the_cursor_and_old_events_stay_unsent(fresh_database_url: str) -> None:
    async def go() -> None:
        database = Database(fresh_database_url)
        try:
            account_id, _ = await _setup(database, with_hook=False)
            await _add_event(database, account_id, 2000, "processed")
            assert await _pass(database) == 0
            assert (await _cursor(database)).last_event_id == 2000
            await _add_event(database, account_id, 2001, "processed")  # before the webhook
            await asyncio.sleep(0.01)
            async with database.session() as session:
                await service.create_webhook(
                    session=session,
                    account_id=account_id,
                    url="https://1.1.1.1/hook",
                    event_types=["processed"],
                    description=None,
                    flavour=Flavour.SMTP2GO,
                    settings=SETTINGS,
                )
            await _add_event(database, account_id, 2002, "processed")
            await _pass(database)
            assert await _outbox(database) == [(2002, "processed")]
            async with database.session() as session:
                payload = (await session.execute(select(WebhookDelivery.payload))).scalar_one()
            assert payload["event"] == "processed" and payload["time"].endswith("Z")
        finally:
            await database.dispose()

    asyncio.run(go())
