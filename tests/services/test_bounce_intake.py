"""Taking bounce and complaint reports on a real database (SQLite file and PostgreSQL): messages
are accepted and delivered through the real services, then the sample reports in
tests/fixtures/bounces come back for them."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.config import Settings
from mailgate.delivery.outcomes import Attempt, plan, write
from mailgate.delivery.queue import Lease
from mailgate.delivery.retry_policy import RetryPolicy
from mailgate.delivery.smtp_pool import RecipientResult
from mailgate.domain import Mailbox, MessageDraft, Outcome
from mailgate.services import accounts
from mailgate.services.bounce_intake import IntakeResult, MatchedBy, Recorded, take_report
from mailgate.services.bounce_reports import ReportKind
from mailgate.services.messages import accept_groups, submission_from_draft, submission_from_raw
from mailgate.services.suppressions import SuppressionReason, suppress
from mailgate.services.verp import Verp
from mailgate.store.db import Database
from mailgate.store.models import Event, Message, MessageRecipient, Suppression, utcnow

SAMPLES = Path(__file__).parent.parent / "fixtures" / "bounces"
SAMPLE_VERP = b"bounces+2n9c-abcdefghij@bounces.example.com"
SAMPLE_MESSAGE_ID = re.compile(rb"<original-\d+@mail\.example\.com>")
BOUNCE_DOMAIN = "bounces.example.com"
FBL_ADDRESS = "fbl@bounces.example.com"  # where feedback loops send: not a VERP address


@dataclass
class World:
    database: Database
    settings: Settings
    verp: Verp
    account_id: int


@dataclass(frozen=True)
class Sent:
    id: int
    message_id_header: str
    return_path: str


@pytest.fixture
async def world(fresh_database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=tmp_path, database_url=fresh_database_url, secret_key=secrets.token_hex(16)
    )
    database = Database(fresh_database_url)
    try:
        async with database.session() as session:
            account = await accounts.create_account(
                session=session, name="shop", email="owner@example.com"
            )
        yield World(database, settings, Verp(settings.secret_keys(), BOUNCE_DOMAIN), account.id)
    finally:
        await database.dispose()


async def send(
    world: World, *to: str, outcomes: dict[str, Outcome] | None = None, raw: bytes | None = None
) -> Sent:
    """Accept a message and record one delivery attempt for it, as the worker does (every
    recipient delivered unless ``outcomes`` says otherwise)."""
    if raw is not None:
        submission = submission_from_raw(raw, settings=world.settings)
    else:
        draft = MessageDraft(
            sender=Mailbox("shop@example.com", "Example Shop"),
            to=tuple(Mailbox(a) for a in to),
            subject="Your receipt",
            text="Thank you for your order.",
        )
        submission = submission_from_draft(draft, settings=world.settings)
    lease = Lease(owner="test-worker", seconds=300, limit=1)
    [[accepted]], jobs = await world.database.write(
        partial(
            accept_groups,
            groups=[(world.account_id, [submission])],
            settings=world.settings,
            lease=lease,
        )
    )
    outcomes = outcomes or {}
    for job in jobs:
        results = tuple(
            RecipientResult(
                recipient=address,
                outcome=outcomes.get(address, Outcome.DELIVERED),
                code={Outcome.DELIVERED: 250, Outcome.SOFT: 451, Outcome.HARD: 550}[
                    outcomes.get(address, Outcome.DELIVERED)
                ],
                reply="reply from upstream",
            )
            for address in job.recipients
        )
        now = utcnow()
        planned = plan(
            job, Attempt(results=results, provider_id=None), now=now, retry=RetryPolicy([60])
        )
        await world.database.write(partial(write, plans=[planned], now=now))
    message = accepted.message
    return Sent(message.id, message.message_id_header, world.verp.return_path(message.id))


def report_for(
    name: str,
    sent: Sent | None,
    *,
    replace: Sequence[tuple[bytes, bytes]] = (),
    return_path: bool = True,
) -> bytes:
    """A sample report, made to name ``sent``: its VERP address and its Message-ID."""
    raw = (SAMPLES / name).read_bytes()
    if not return_path:
        raw = re.sub(rb"(?im)^(Return-Path|X-Postfix-Sender):.*\r?\n", b"", raw)
    if sent is not None:
        raw = raw.replace(SAMPLE_VERP, sent.return_path.encode())
        raw = SAMPLE_MESSAGE_ID.sub(sent.message_id_header.encode(), raw)
    for old, new in replace:
        raw = raw.replace(old, new)
    return raw


async def take(world: World, raw: bytes, *recipients: str) -> IntakeResult:
    async with world.database.session() as session:
        return await take_report(session=session, raw=raw, recipients=recipients, verp=world.verp)


@dataclass(frozen=True)
class State:
    status: str
    recipients: dict[str, tuple[str, int | None]]
    events: list[tuple[str, str | None, str | None, int | None]]  # type, recipient, class, code
    suppressed: dict[str, str]


async def state(world: World, sent: Sent) -> State:
    async with world.database.session() as session:
        message = await session.get(Message, sent.id)
        assert message is not None
        rows = await session.execute(
            select(
                MessageRecipient.address, MessageRecipient.status, MessageRecipient.last_code
            ).where(MessageRecipient.message_id == sent.id)
        )
        events = await session.execute(
            select(Event.type, Event.recipient, Event.bounce_class, Event.smtp_code)
            .where(Event.message_id == sent.id, Event.type.in_(["bounce", "spam"]))
            .order_by(Event.id)
        )
        suppressed = await session.execute(
            select(Suppression.value, Suppression.reason).where(
                Suppression.account_id == world.account_id
            )
        )
        return State(
            message.status,
            {address: (status, code) for address, status, code in rows},
            [tuple(row) for row in events],  # type: ignore[misc]
            {value: reason for value, reason in suppressed},
        )


async def count(world: World, model: type[Event] | type[Suppression]) -> int:
    async with world.database.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# -- bounces ---------------------------------------------------------------------------------


async def test_hard_bounce_records_an_event_bounces_the_recipient_and_suppresses(
    world: World,
) -> None:
    sent = await send(world, "jane@example.net")

    result = await take(world, report_for("dsn_hard.eml", sent), sent.return_path)

    assert result == IntakeResult(
        report=ReportKind.BOUNCE,
        message_id=sent.id,
        matched_by=MatchedBy.VERP,
        recorded=(("jane@example.net", Recorded.HARD_BOUNCE),),
    )
    after = await state(world, sent)
    assert after.status == "bounced"
    assert after.recipients == {"jane@example.net": ("bounced", 550)}
    assert after.events == [("bounce", "jane@example.net", "hard", 550)]
    assert after.suppressed == {"jane@example.net": "hard_bounce"}
    async with world.database.session() as session:
        event = (await session.execute(select(Event).where(Event.type == "bounce"))).scalar_one()
        row = (
            await session.execute(
                select(MessageRecipient).where(MessageRecipient.message_id == sent.id)
            )
        ).scalar_one()
    assert event.detail == "550 5.1.1 <jane@example.net>... User unknown"
    assert row.last_reply == event.detail


async def test_one_failed_one_delayed_one_delivered(world: World) -> None:
    sent = await send(world, "jane@example.net", "bob@example.org", "carol@example.org")

    result = await take(world, report_for("dsn_two_recipients.eml", sent), sent.return_path)

    # jane was forwarded: the report's Final-Recipient is another address, its
    # Original-Recipient is ours
    assert result.recorded == (
        ("jane@example.net", Recorded.HARD_BOUNCE),
        ("bob@example.org", Recorded.SOFT_BOUNCE),
    )
    after = await state(world, sent)
    assert after.status == "partial"
    assert after.recipients == {
        "jane@example.net": ("bounced", 550),
        "bob@example.org": ("delivered", 250),
        "carol@example.org": ("delivered", 250),
    }
    assert after.events == [
        ("bounce", "jane@example.net", "hard", 550),
        ("bounce", "bob@example.org", "soft", 421),
    ]
    assert after.suppressed == {"jane@example.net": "hard_bounce"}


async def test_soft_bounce_records_an_event_only(world: World) -> None:
    sent = await send(world, "bob@example.org")

    result = await take(world, report_for("dsn_delayed.eml", sent), sent.return_path)

    assert result.recorded == (("bob@example.org", Recorded.SOFT_BOUNCE),)
    after = await state(world, sent)
    assert after.status == "delivered"
    assert after.recipients == {"bob@example.org": ("delivered", 250)}
    assert after.events == [("bounce", "bob@example.org", "soft", 451)]
    assert after.suppressed == {}


async def test_a_plain_text_bounce(world: World) -> None:
    sent = await send(world, "jane@example.org", "old.user@example.org", "full@example.org")

    result = await take(world, report_for("qmail.eml", sent), sent.return_path)

    assert result.recorded == (
        ("jane@example.org", Recorded.HARD_BOUNCE),
        ("old.user@example.org", Recorded.HARD_BOUNCE),
        ("full@example.org", Recorded.SOFT_BOUNCE),
    )
    after = await state(world, sent)
    assert after.status == "partial"
    assert set(after.suppressed) == {"jane@example.org", "old.user@example.org"}


async def test_the_message_keeps_its_status_while_a_recipient_is_pending(world: World) -> None:
    sent = await send(
        world, "jane@example.net", "later@example.org", outcomes={"later@example.org": Outcome.SOFT}
    )

    await take(world, report_for("dsn_hard.eml", sent), sent.return_path)

    after = await state(world, sent)
    assert after.recipients == {
        "jane@example.net": ("bounced", 550),
        "later@example.org": ("deferred", 451),
    }
    assert after.status == "deferred"  # still in the queue for the other recipient


# -- complaints ------------------------------------------------------------------------------


async def test_complaint_records_a_spam_event_and_suppresses(world: World) -> None:
    sent = await send(world, "jane@example.net", "bob@example.org")

    result = await take(world, report_for("arf_abuse.eml", sent), FBL_ADDRESS)

    assert result == IntakeResult(
        report=ReportKind.COMPLAINT,
        message_id=sent.id,
        matched_by=MatchedBy.RETURN_PATH,  # the feedback loop's address is not a VERP one
        recorded=(("jane@example.net", Recorded.COMPLAINT),),
    )
    after = await state(world, sent)
    assert after.events == [("spam", "jane@example.net", None, None)]
    assert after.suppressed == {"jane@example.net": "complaint"}
    assert after.status == "delivered"


async def test_a_complaint_naming_nobody_is_about_the_only_recipient(world: World) -> None:
    only = await send(world, "solo@isp.example")
    several = await send(world, "a@isp.example", "b@isp.example")

    taken = await take(world, report_for("arf_headers.eml", only), FBL_ADDRESS)
    unclear = await take(world, report_for("arf_headers.eml", several), FBL_ADDRESS)

    assert taken.recorded == (("solo@isp.example", Recorded.COMPLAINT),)
    assert unclear.message_id == several.id
    assert unclear.recorded == ()  # which of the two complained? nobody is suppressed
    assert (await state(world, several)).suppressed == {"solo@isp.example": "complaint"}


async def test_not_spam_feedback_records_nothing(world: World) -> None:
    sent = await send(world, "jane@example.net")
    raw = report_for(
        "arf_abuse.eml", sent, replace=[(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")]
    )

    result = await take(world, raw, FBL_ADDRESS)

    assert result.message_id == sent.id
    assert result.recorded == ()
    assert (await state(world, sent)).suppressed == {}


# -- what must not be recorded ---------------------------------------------------------------


async def test_a_forged_recipient_is_ignored(world: World) -> None:
    sent = await send(world, "alice@example.net")
    await send(world, "jane@example.net")  # jane is a recipient of another message only

    for name in ("dsn_hard.eml", "arf_abuse.eml"):
        result = await take(world, report_for(name, sent), sent.return_path)
        assert result.message_id == sent.id
        assert result.recorded == ()

    after = await state(world, sent)
    assert after.events == []
    assert after.suppressed == {}
    assert after.recipients == {"alice@example.net": ("delivered", 250)}


async def test_a_recipient_that_was_never_sent_to_is_ignored(world: World) -> None:
    async with world.database.session() as session:
        await suppress(
            session=session,
            account_id=world.account_id,
            address="jane@example.net",
            reason=SuppressionReason.MANUAL,
        )
        await session.commit()
    sent = await send(world, "jane@example.net", "bob@example.org")  # jane: rejected at accept

    result = await take(world, report_for("dsn_hard.eml", sent), sent.return_path)

    assert result.recorded == ()
    assert (await state(world, sent)).recipients["jane@example.net"] == ("rejected", None)


async def test_an_unknown_message_writes_nothing(world: World) -> None:
    sent = await send(world, "jane@example.net")
    events, suppressions = await count(world, Event), await count(world, Suppression)
    stranger = Verp(["another-gateway-key"], BOUNCE_DOMAIN).return_path(sent.id)
    raw = report_for(
        "dsn_hard.eml",
        None,
        replace=[(b"<original-1@mail.example.com>", b"<unknown@elsewhere.example>")],
    )

    for rcpt in (stranger, sent.return_path.replace("@", "x@"), "postmaster@bounces.example.com"):
        result = await take(world, raw.replace(SAMPLE_VERP, stranger.encode()), rcpt)
        assert result == IntakeResult(report=ReportKind.BOUNCE)
    gone = world.verp.return_path(sent.id + 1000)  # a valid address whose message is gone
    assert (await take(world, raw, gone)).message_id is None

    assert (await count(world, Event), await count(world, Suppression)) == (events, suppressions)


async def test_garbage_is_taken_without_error(world: World) -> None:
    sent = await send(world, "jane@example.net")

    result = await take(world, b"\xff\x00 not mail at all", sent.return_path)

    assert result == IntakeResult(
        report=ReportKind.UNKNOWN, message_id=sent.id, matched_by=MatchedBy.VERP
    )
    assert (await state(world, sent)).events == []


async def test_the_same_report_twice_records_once(world: World) -> None:
    sent = await send(world, "jane@example.net", "bob@example.org", "carol@example.org")
    raw = report_for("dsn_two_recipients.eml", sent)

    first = await take(world, raw, sent.return_path)
    second = await take(world, raw, sent.return_path)
    by_message_id = await take(world, report_for("dsn_two_recipients.eml", sent), FBL_ADDRESS)

    assert len(first.recorded) == 2
    assert second.message_id == sent.id
    assert second.recorded == ()
    assert by_message_id.recorded == ()
    assert len((await state(world, sent)).events) == 2


async def test_a_bounce_answered_during_delivery_is_hard_and_not_recorded_again(
    world: World,
) -> None:
    sent = await send(world, "jane@example.net", outcomes={"jane@example.net": Outcome.HARD})
    assert (await state(world, sent)).events == [("bounce", "jane@example.net", "hard", 550)]

    result = await take(world, report_for("dsn_hard.eml", sent), sent.return_path)

    assert result.recorded == ()
    assert len((await state(world, sent)).events) == 1


# -- finding the message without VERP --------------------------------------------------------


async def test_found_through_the_message_id_when_verp_is_lost(world: World) -> None:
    sent = await send(world, "jane@example.net")
    raw = report_for("postfix_dsn.eml", sent, return_path=False)

    result = await take(world, raw, FBL_ADDRESS)

    assert result.matched_by is MatchedBy.MESSAGE_ID
    assert result.message_id == sent.id
    assert result.recorded == (("jane@example.net", Recorded.HARD_BOUNCE),)
    assert (await state(world, sent)).status == "bounced"


async def test_a_message_id_two_messages_share_finds_neither(world: World) -> None:
    raw_message = (
        b"From: shop@example.com\r\nTo: jane@example.net\r\nSubject: twice\r\n"
        b"Message-ID: <shared@example.com>\r\n\r\nHello\r\n"
    )
    one = await send(world, raw=raw_message)
    await send(world, raw=raw_message)
    assert one.message_id_header == "<shared@example.com>"
    raw = report_for("postfix_dsn.eml", one, return_path=False)

    result = await take(world, raw, FBL_ADDRESS)

    assert result.message_id is None
    assert result.recorded == ()
