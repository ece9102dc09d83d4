"""The worker against real upstreams and a real queue (SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import timedelta
from functools import partial
from pathlib import Path

from queue_support import Bench, bench
from sqlalchemy import update

from mailgate.delivery.coordination import (
    MAX_DATAGRAM,
    DelivererHandoff,
    DeliveryLock,
    Handed,
    WakeListener,
    WakeSender,
)
from mailgate.delivery.queue import Handoff, claim_due
from mailgate.domain import Mailbox, MessageDraft, QuotaRange, QuotaWindow
from mailgate.services import messages
from mailgate.services.messages import AcceptBatcher
from mailgate.services.suppressions import SuppressionReason, find_suppressed, suppress
from mailgate.store.models import Message, utcnow
from smtp_servers import SmtpServer, _serving


async def test_a_message_is_delivered_with_its_headers_and_events(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        [public_id] = await b.send(
            to=["to@example.com"],
            cc=["cc@example.com"],
            bcc=["hidden@example.com"],
            subject="Grüße — 配信テスト",
        )
        assert (await b.message(public_id)).status == "queued"
        worker = b.worker()
        await worker.run_until_idle()
        await worker.close()

        # Not marked transactional-only: a copy per recipient, each with its own one-click
        # unsubscribe link (RFC 8058); Bcc stays out of every copy's headers.
        assert sorted(r for m in smtp_plain.messages for r in m.rcpt_tos) == [
            "cc@example.com",
            "hidden@example.com",
            "to@example.com",
        ]
        assert all(len(m.rcpt_tos) == 1 for m in smtp_plain.messages)
        links = set()
        for received in smtp_plain.messages:
            parsed = email.message_from_bytes(received.data, policy=email.policy.default)
            assert parsed["Subject"] == "Grüße — 配信テスト"
            assert "hidden@example.com" not in received.data.decode("ascii", "replace")
            assert parsed["Message-ID"] and parsed["Date"]
            assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            links.add(str(parsed["List-Unsubscribe"]))
        assert len(links) == 3

        message = await b.message(public_id)
        assert message.status == "delivered"
        assert message.lease_owner is None and message.attempts == 1
        statuses = {a: r.status for a, r in (await b.recipients(public_id)).items()}
        assert set(statuses.values()) == {"delivered"}
        events = await b.events(public_id)
        assert events[0] == ("processed", None)
        assert sorted(r for t, r in events if t == "delivered") == sorted(statuses)


async def test_per_recipient_outcomes_bounce_suppress_and_defer(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_rejecting.host, smtp_rejecting.port)
        [public_id] = await b.send(
            to=["ok@example.com", "reject-me@example.com", "defer-me@example.com"]
        )
        worker = b.worker()
        await worker.run_until_idle()
        await worker.close()

        assert [m.rcpt_tos for m in smtp_rejecting.messages] == [["ok@example.com"]]
        rows = await b.recipients(public_id)
        assert rows["ok@example.com"].status == "delivered"
        assert rows["reject-me@example.com"].status == "bounced"
        assert rows["reject-me@example.com"].last_code == 550
        assert rows["defer-me@example.com"].status == "deferred"
        assert rows["defer-me@example.com"].last_code == 451
        message = await b.message(public_id)
        assert message.status == "deferred"
        assert message.due_at > utcnow() + timedelta(seconds=30)  # retry_schedule=[60]
        kinds = {(t, r) for t, r in await b.events(public_id)}
        assert {
            ("delivered", "ok@example.com"),
            ("bounce", "reject-me@example.com"),
            ("deferred", "defer-me@example.com"),
        } <= kinds
        async with b.database.session() as session:
            suppressed = await find_suppressed(
                session=session,
                account_id=b.account_id,
                addresses=["reject-me@example.com", "ok@example.com"],
            )
        assert suppressed == {"reject-me@example.com"}

        # A hard-bounced address is refused at the next send, never sent again.
        [again] = await b.send(to=["reject-me@example.com"])
        assert (await b.message(again)).status == "rejected"
        assert ("reject", "reject-me@example.com") in await b.events(again)


async def test_soft_failures_retry_then_expire(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_rejecting: SmtpServer
) -> None:
    async with bench(
        fresh_database_url, tmp_path, tls_ca_bundle, retry_schedule=[0], message_expiry_hours=1.0
    ) as b:
        await b.provider(smtp_rejecting.host, smtp_rejecting.port)
        [public_id] = await b.send(to=["defer-me@example.com"])
        worker = b.worker()
        for message_id in await worker.claim(10):
            await worker.deliver(message_id)
        assert (await b.message(public_id)).status == "deferred"
        # Second try, then the message is past its expiry: it fails for good.
        for message_id in await worker.claim(10):
            await worker.deliver(message_id)
        assert (await b.recipients(public_id))["defer-me@example.com"].attempts == 2
        async with b.database.session() as session:
            await session.execute(
                update(Message)
                .where(Message.public_id == public_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        for message_id in await worker.claim(10):
            await worker.deliver(message_id)
        await worker.close()
        assert (await b.message(public_id)).status == "failed"
        assert (await b.recipients(public_id))["defer-me@example.com"].status == "failed"
        assert ("failed", "defer-me@example.com") in await b.events(public_id)


async def test_suppressed_recipients_are_rejected_at_send_time(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        async with b.database.session() as session:
            await suppress(
                session=session,
                account_id=b.account_id,
                address="blocked.example",
                reason=SuppressionReason.MANUAL,
            )
            await session.commit()
        [public_id] = await b.send(to=["fine@example.com", "anyone@BLOCKED.example"])
        worker = b.worker()
        await worker.run_until_idle()
        await worker.close()
        assert [m.rcpt_tos for m in smtp_plain.messages] == [["fine@example.com"]]
        rows = await b.recipients(public_id)
        assert rows["anyone@BLOCKED.example"].status == "rejected"
        assert (await b.message(public_id)).status == "partial"


async def test_failover_and_the_circuit_breaker(
    fresh_database_url: str,
    tmp_path: Path,
    tls_ca_bundle: Path,
    smtp_plain: SmtpServer,
    refused_port: int,
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle, circuit_failure_threshold=2) as b:
        broken = await b.provider("127.0.0.1", refused_port, name="broken", percentage=100)
        await b.provider(smtp_plain.host, smtp_plain.port, name="healthy", percentage=1)
        ids = await b.send(6)
        worker = b.worker()
        await worker.run_until_idle()
        await worker.close()
        assert len(smtp_plain.messages) == 6
        assert {(await b.message(i)).status for i in ids} == {"delivered"}
        row = await b.provider_row(broken)
        assert row.status == "error"
        assert row.status_reason and "refused" in row.status_reason


async def test_an_explicit_provider_is_used_whatever_its_weight(
    fresh_database_url: str,
    tmp_path: Path,
    tls_ca_bundle: Path,
) -> None:
    with _serving() as first, _serving() as second:
        async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
            await b.provider(first.host, first.port, name="first", percentage=100)
            chosen = await b.provider(second.host, second.port, name="second", percentage=0)
            await b.send(3, provider_ref=str(chosen))
            await b.send(2)
            worker = b.worker()
            await worker.run_until_idle()
            await worker.close()
        assert (len(first.messages), len(second.messages)) == (2, 3)


async def test_weighting_spreads_traffic_by_percentage(
    fresh_database_url: str,
    tmp_path: Path,
    tls_ca_bundle: Path,
) -> None:
    with _serving() as heavy, _serving() as light:
        async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
            await b.provider(heavy.host, heavy.port, name="heavy", percentage=75)
            await b.provider(light.host, light.port, name="light", percentage=25)
            await b.send(400)
            worker = b.worker()
            await worker.run_until_idle(limit_seconds=120)
            await worker.close()
        total = len(heavy.messages) + len(light.messages)
        assert total == 400
        # Binomial(400, 0.25): mean 100, sd ~8.7; 5 sd either side never fails by chance.
        assert 57 <= len(light.messages) <= 143


async def test_quotas_hold_mail_until_the_window_has_room(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(
            smtp_plain.host,
            smtp_plain.port,
            quotas={QuotaWindow.PER_HOUR: QuotaRange(5, 5)},
        )
        ids = await b.send(8)
        worker = b.worker()
        for message_id in await worker.claim(100):
            await worker.deliver(message_id)
        await worker.close()
        assert len(smtp_plain.messages) == 5
        statuses = [(await b.message(i)).status for i in ids]
        assert statuses.count("delivered") == 5
        assert statuses.count("queued") == 3  # held back, not failed, no deferral event
        for public_id in ids:
            assert not [t for t, _ in await b.events(public_id) if t == "deferred"]


async def test_an_expired_lease_is_claimed_again(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle, queue_lease_seconds=0.5) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        [public_id] = await b.send()
        crashed = b.worker()
        assert len(await crashed.claim(10)) == 1  # ... and dies without sending
        rescuer = b.worker()
        assert await rescuer.claim(10) == []  # leased to the other worker
        await asyncio.sleep(0.6)
        await rescuer.run_until_idle()
        await rescuer.close()
        await crashed.close()
        assert len(smtp_plain.messages) == 1
        message = await b.message(public_id)
        assert message.status == "delivered" and message.attempts == 2


async def test_claims_never_overlap(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.send(60)

        async def one_claim(worker_id: str) -> list[int]:
            return await b.database.write(
                partial(claim_due, worker_id=worker_id, limit=7, lease_seconds=60, now=utcnow())
            )

        batches = await asyncio.gather(*(one_claim(f"w{i}") for i in range(12)))
        claimed = [i for batch in batches for i in batch]
        assert len(claimed) == len(set(claimed)) == 60


async def _accept_handed_to(
    b: Bench, handoff: Handoff, count: int, *, large: frozenset[int] = frozenset()
) -> list[str]:
    """Accept ``count`` messages the way the API does, handed to ``handoff``: this
    process's worker, or the delivering process's. Those numbered in ``large`` are too
    large to travel whole in a handoff datagram."""
    batcher = AcceptBatcher(b.database, b.settings, handoff=handoff)
    submissions = [
        messages.submission_from_draft(
            MessageDraft(
                sender=Mailbox("sender@example.com"),
                to=(Mailbox(f"r{i}@example.com"),),
                subject=f"handed {i}",
                text="Body\n" * (MAX_DATAGRAM // 5 if i in large else 1),
            ),
            settings=b.settings,
        )
        for i in range(count)
    ]
    accepted = await asyncio.gather(*(batcher.accept(b.account_id, [s]) for s in submissions))
    return [a[0].message.public_id for a in accepted]


async def test_accepted_mail_is_handed_over_leased_and_delivered_without_a_claim(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        worker = b.worker()
        ids = await _accept_handed_to(b, worker, 5)
        for public_id in ids:  # committed already leased to that worker, counted as a try
            message = await b.message(public_id)
            assert (message.lease_owner, message.attempts) == (worker.worker_id, 1)
        other = b.worker()
        assert await other.claim(100) == []  # nobody else may take them
        await worker.run_until_idle()
        await worker.close()
        await other.close()
        assert sorted(str(m.parsed["Subject"]) for m in smtp_plain.messages) == [
            f"handed {i}" for i in range(5)
        ]
        for public_id in ids:
            message = await b.message(public_id)
            assert (message.status, message.lease_owner, message.attempts) == (
                "delivered",
                None,
                1,
            )


async def test_a_helper_gives_mail_for_providers_with_quotas_back_to_the_queue(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(
            smtp_plain.host, smtp_plain.port, quotas={QuotaWindow.PER_HOUR: QuotaRange(3, 3)}
        )
        helper = b.worker(helper=True)
        nudged: list[bool] = []
        helper.nudge_deliverer = lambda: nudged.append(True)
        ids = await _accept_handed_to(b, helper, 4)
        await helper.run_until_idle()
        await helper.close()
        assert smtp_plain.messages == [] and nudged
        for public_id in ids:  # back in the queue as if never leased: no try, no event
            message = await b.message(public_id)
            assert (message.status, message.lease_owner, message.attempts) == ("queued", None, 0)
            assert await b.events(public_id) == [("processed", None)]
        deliverer = b.worker()  # the one process that counts quotas
        await deliverer.run_until_idle()
        await deliverer.close()
        assert len(smtp_plain.messages) == 3
        statuses = sorted([(await b.message(i)).status for i in ids])
        assert statuses == ["delivered", "delivered", "delivered", "queued"]


async def _leases(b: Bench, public_ids: list[str]) -> list[tuple[str, str | None, int]]:
    return [
        (m.status, m.lease_owner, m.attempts)
        for m in [await b.message(public_id) for public_id in public_ids]
    ]


async def test_mail_accepted_by_another_process_is_handed_to_the_deliverer_whole(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    """The serving process commits its mail leased to the worker the delivery lock names
    and sends it the messages (a large one by id, read from the table): delivered with no
    claim (the poll is far off, nobody nudges)."""
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle, queue_poll_seconds=60) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        deliverer = b.worker()
        lock = DeliveryLock(tmp_path)
        assert lock.acquire()
        lock.announce(deliverer.worker_id)
        listener = WakeListener(tmp_path, deliverer)
        assert await listener.start()
        sender = WakeSender(tmp_path)
        handoff = DelivererHandoff(tmp_path, sender, seconds=60, limit=100)
        stop = asyncio.Event()
        try:
            await deliverer.claim(10)  # its first look at the queue, done: it polls in 60 s
            ids = await _accept_handed_to(b, handoff, 5, large=frozenset({3}))
            assert await _leases(b, ids) == [("queued", deliverer.worker_id, 1)] * 5
            assert await b.worker().claim(100) == []  # nobody else may take them
            running = asyncio.create_task(deliverer.run(stop))
            for _ in range(200):
                if len(smtp_plain.messages) == 5:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await running
        finally:
            stop.set()
            listener.close()
            await deliverer.close()
            sender.close()
            lock.release()
        assert sorted(str(m.parsed["Subject"]) for m in smtp_plain.messages) == [
            f"handed {i}" for i in range(5)
        ]
        assert await _leases(b, ids) == [("delivered", None, 1)] * 5
        assert handoff.lease() is None  # the lock is released: nobody to hand mail to


async def test_a_handoff_nobody_hears_gives_its_leases_back_at_once(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        lock = DeliveryLock(tmp_path)  # a deliverer that has not started listening yet
        assert lock.acquire()
        lock.announce("deliverer-to-be")
        sender = WakeSender(tmp_path)
        handoff = DelivererHandoff(tmp_path, sender, seconds=60, limit=100)
        try:
            assert handoff.lease() is not None
            ids = await _accept_handed_to(b, handoff, 3)
            assert handoff.lease() is None  # unheard: not leased for a moment
        finally:
            sender.close()
            lock.release()
        # due now for whoever claims, the try the lease counted taken back
        assert await _leases(b, ids) == [("queued", None, 0)] * 3
        worker = b.worker()
        await worker.run_until_idle()
        await worker.close()
        assert await _leases(b, ids) == [("delivered", None, 1)] * 3


async def test_mail_leased_to_a_worker_that_was_replaced_is_given_back(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        gone = b.worker()  # its process ended before it heard of this mail
        ids = await _accept_handed_to(b, gone, 2)
        message_ids = [(await b.message(public_id)).id for public_id in ids]
        deliverer = b.worker()
        until = utcnow() + timedelta(minutes=5)
        deliverer.adopt_leased(Handed(gone.worker_id, until, [], message_ids))
        for _ in range(100):
            if await _leases(b, ids) == [("queued", None, 0)] * 2:
                break
            await asyncio.sleep(0.05)
        await deliverer.run_until_idle()
        await deliverer.close()
        assert await _leases(b, ids) == [("delivered", None, 1)] * 2
        assert len(smtp_plain.messages) == 2


async def test_a_worker_that_stops_gives_back_mail_it_did_not_start(
    fresh_database_url: str, tmp_path: Path, tls_ca_bundle: Path, smtp_plain: SmtpServer
) -> None:
    async with bench(fresh_database_url, tmp_path, tls_ca_bundle) as b:
        await b.provider(smtp_plain.host, smtp_plain.port)
        stopping = b.worker()
        ids = await _accept_handed_to(b, stopping, 3)
        assert await _leases(b, ids) == [("queued", stopping.worker_id, 1)] * 3
        await stopping.close()  # stopped before it sent them
        assert await _leases(b, ids) == [("queued", None, 0)] * 3
        successor = b.worker()
        await successor.run_until_idle()
        await successor.close()
        assert await _leases(b, ids) == [("delivered", None, 1)] * 3
