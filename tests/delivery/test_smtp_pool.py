"""SmtpPool against real aiosmtpd servers on real sockets (fixtures in tests/smtp_servers.py).

Tests on ``smtp_scripted`` run twice: one command at a time, and with PIPELINING advertised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mailgate.delivery.smtp_pool import PoolLimits, RecipientResult, SmtpPool
from mailgate.delivery.transport import Reply, _dot_stuffed, _MalformedReply, _ReplyParser
from mailgate.domain import Outcome, Security, SmtpEndpoint
from smtp_servers import (
    DEFERRED_MESSAGE_REPLY,
    DEFERRED_REPLY,
    REFUSED_MESSAGE_REPLY,
    REJECTED_REPLY,
    SENDER_REJECTED_REPLY,
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpServer,
)

TIMEOUT = 5.0
SENDER = "sender@example.com"


def endpoint(
    server: SmtpServer, security: Security = Security.NONE, **options: Any
) -> SmtpEndpoint:
    return SmtpEndpoint(host=server.host, port=server.port, security=security, **options)


def message(subject: str = "Hello", *, headers: str = "", body: str = "Hi.\n") -> bytes:
    return (
        f"From: {SENDER}\nTo: someone@example.net\nSubject: {subject}\n{headers}\n{body}"
    ).encode()


def on_the_wire(data: bytes) -> bytes:
    """What a server keeps of ``data`` after DATA: CRLF line endings, ending in CRLF."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``condition()`` holds (for effects on another thread or a later loop turn)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


@pytest.fixture
async def pool_for() -> AsyncIterator[Callable[..., SmtpPool]]:
    """Make pools (closed at the end of the test) with short test defaults."""
    pools: list[SmtpPool] = []

    def make(target: SmtpEndpoint, **options: Any) -> SmtpPool:
        options.setdefault("limits", PoolLimits(timeout=TIMEOUT))
        options.setdefault("helo_name", "client.test")
        pool = SmtpPool(target, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


def pipelined(server: SmtpServer) -> bool:
    """Whether the server read MAIL, RCPT and DATA in one chunk at least once."""
    return any(
        b"MAIL FROM" in chunk and b"RCPT TO" in chunk and b"DATA\r\n" in chunk
        for chunk in server.chunks
    )


def sent_together(server: SmtpServer) -> bool:
    return any(b"MAIL FROM" in chunk and b"RCPT TO" in chunk for chunk in server.chunks)


# --- delivery ------------------------------------------------------------------------------


async def test_delivered_mail_arrives_intact(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    data = b"Subject: dots\nX-Mixed: endings\r\n\n.a line with a leading dot\n..two\r.\nlast"
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(mail_from=SENDER, recipients=["someone@example.net"], data=data)

    assert result.results == (
        RecipientResult("someone@example.net", Outcome.DELIVERED, 250, "250 2.0.0 OK queued as 1"),
    )
    assert result.delivered == result.results
    assert (result.soft, result.hard) == ((), ())
    [received] = smtp_scripted.messages
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ["someone@example.net"])
    assert received.data == on_the_wire(data)
    assert pipelined(smtp_scripted) is smtp_scripted.pipelining
    assert sent_together(smtp_scripted) is smtp_scripted.pipelining
    assert pool.stats.messages_sent == 1


async def test_connection_reused_without_rset(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted))

    for n in range(10):
        result = await pool.send(
            mail_from=SENDER, recipients=[f"r{n}@example.net"], data=message(f"n{n}")
        )
        assert [r.outcome for r in result.results] == [Outcome.DELIVERED]

    assert smtp_scripted.connections == 1
    assert [m.parsed["Subject"] for m in smtp_scripted.messages] == [f"n{n}" for n in range(10)]
    assert not any(b"RSET" in chunk for chunk in smtp_scripted.chunks)
    stats = pool.stats
    assert (stats.opened, stats.open, stats.idle, stats.busy) == (1, 1, 1, 0)
    assert stats.messages_sent == 10


async def test_max_messages_per_connection(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    limits = PoolLimits(max_messages_per_connection=3, timeout=TIMEOUT)
    pool = pool_for(endpoint(smtp_scripted), limits=limits)

    for _ in range(7):
        result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
        assert result.results[0].outcome is Outcome.DELIVERED

    assert smtp_scripted.connections == 3
    assert len(smtp_scripted.messages) == 7
    assert pool.stats.opened == 3
    assert sum(chunk.count(b"QUIT\r\n") for chunk in smtp_scripted.chunks) == 2  # worn out


async def test_concurrent_sends_share_max_connections(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(max_connections=2, timeout=TIMEOUT))

    results = await asyncio.gather(
        *(
            pool.send(mail_from=SENDER, recipients=[f"r{n}@example.net"], data=message(f"{n}"))
            for n in range(20)
        )
    )

    assert all(r.results[0].outcome is Outcome.DELIVERED for r in results)
    assert sorted(m.parsed["Subject"] for m in smtp_scripted.messages) == sorted(
        str(n) for n in range(20)
    )
    assert smtp_scripted.peak_connections <= 2
    assert smtp_scripted.connections <= 2
    assert pool.stats.opened <= 2


async def test_waiting_senders_are_served_in_order(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(max_connections=1, timeout=TIMEOUT))

    sends = [
        asyncio.create_task(
            pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message(f"{n}"))
        )
        for n in range(6)
    ]
    await asyncio.gather(*sends)

    assert [m.parsed["Subject"] for m in smtp_scripted.messages] == [str(n) for n in range(6)]
    assert smtp_scripted.connections == 1


async def test_large_message(smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]) -> None:
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n"
    data = message(body=line * 25_000)  # 2 MB
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=data)

    assert result.results[0].outcome is Outcome.DELIVERED
    assert smtp_scripted.messages[0].data == on_the_wire(data)


# --- per-recipient outcomes ----------------------------------------------------------------


async def test_recipient_mix(smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]) -> None:
    pool = pool_for(endpoint(smtp_scripted))
    recipients = ["ok@example.net", "reject-me@example.net", "defer-me@example.net"]

    result = await pool.send(mail_from=SENDER, recipients=recipients, data=message())

    assert result.results == (
        RecipientResult("ok@example.net", Outcome.DELIVERED, 250, "250 2.0.0 OK queued as 1"),
        RecipientResult("reject-me@example.net", Outcome.HARD, 550, REJECTED_REPLY),
        RecipientResult("defer-me@example.net", Outcome.SOFT, 451, DEFERRED_REPLY),
    )
    assert [r.recipient for r in result.hard] == ["reject-me@example.net"]
    assert [r.recipient for r in result.soft] == ["defer-me@example.net"]
    [received] = smtp_scripted.messages
    assert received.rcpt_tos == ["ok@example.net"]


async def test_every_recipient_refused_sends_no_message_and_resets(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted))

    refused = await pool.send(
        mail_from=SENDER, recipients=["reject@example.net", "defer@example.net"], data=message()
    )
    after = await pool.send(mail_from=SENDER, recipients=["ok@example.net"], data=message())

    assert [(r.outcome, r.code) for r in refused.results] == [
        (Outcome.HARD, 550),
        (Outcome.SOFT, 451),
    ]
    assert after.results[0].outcome is Outcome.DELIVERED
    [received] = smtp_scripted.messages
    assert received.rcpt_tos == ["ok@example.net"]
    assert smtp_scripted.connections == 1
    assert any(b"RSET\r\n" in chunk for chunk in smtp_scripted.chunks)


async def test_sender_refused_is_hard_for_everyone(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(
        mail_from="reject-me@example.com",
        recipients=["a@example.net", "b@example.net"],
        data=message(),
    )
    after = await pool.send(mail_from=SENDER, recipients=["c@example.net"], data=message())

    assert result.results == tuple(
        RecipientResult(r, Outcome.HARD, 553, SENDER_REJECTED_REPLY)
        for r in ("a@example.net", "b@example.net")
    )
    assert after.results[0].outcome is Outcome.DELIVERED
    assert [m.rcpt_tos for m in smtp_scripted.messages] == [["c@example.net"]]
    assert smtp_scripted.connections == 1


@pytest.mark.parametrize(
    ("refusal", "outcome", "reply"),
    [
        ("permanent", Outcome.HARD, REFUSED_MESSAGE_REPLY),
        ("temporary", Outcome.SOFT, DEFERRED_MESSAGE_REPLY),
    ],
)
async def test_message_refused_after_data(
    smtp_scripted: SmtpServer,
    pool_for: Callable[..., SmtpPool],
    refusal: str,
    outcome: Outcome,
    reply: str,
) -> None:
    pool = pool_for(endpoint(smtp_scripted))
    data = message(headers=f"X-Refuse: {refusal}\n")

    result = await pool.send(
        mail_from=SENDER, recipients=["a@example.net", "reject@example.net"], data=data
    )
    after = await pool.send(mail_from=SENDER, recipients=["b@example.net"], data=message())

    assert result.results == (
        RecipientResult("a@example.net", outcome, int(reply[:3]), reply),
        RecipientResult("reject@example.net", Outcome.HARD, 550, REJECTED_REPLY),
    )
    assert after.results[0].outcome is Outcome.DELIVERED
    assert smtp_scripted.connections == 1  # a refused message ends the transaction cleanly


async def test_authentication_required_at_mail_is_soft(
    smtp_starttls: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    # Security NONE against a server that requires STARTTLS: no upgrade, MAIL gets 530.
    pool = pool_for(endpoint(smtp_starttls))

    result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())

    [only] = result.results
    assert (only.outcome, only.code) == (Outcome.SOFT, 530)
    assert "STARTTLS" in only.reply
    assert smtp_starttls.messages == []


# --- SMTPUTF8 ------------------------------------------------------------------------------


async def test_smtputf8_addresses(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    data = "From: jürgen@example.com\nSubject: Grüße\n\nHallo Zoë\n".encode()
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(
        mail_from="jürgen@example.com", recipients=["zoë@example.net"], data=data
    )

    assert result.results[0].outcome is Outcome.DELIVERED
    [received] = smtp_scripted.messages
    assert (received.mail_from, received.rcpt_tos) == ("jürgen@example.com", ["zoë@example.net"])
    assert received.data == on_the_wire(data)
    [mail] = [
        line for chunk in smtp_scripted.chunks for line in chunk.split(b"\r\n") if b"MAIL" in line
    ]
    assert mail.endswith(b"BODY=8BITMIME SMTPUTF8")


@pytest.mark.parametrize(
    ("recipient", "smtputf8"), [("zoë@example.net", False), ("zoe@example.net", True)]
)
async def test_smtputf8_needed_but_not_offered_is_hard(
    smtp_ascii_only: SmtpServer,
    pool_for: Callable[..., SmtpPool],
    recipient: str,
    smtputf8: bool,
) -> None:
    pool = pool_for(endpoint(smtp_ascii_only))

    result = await pool.send(
        mail_from=SENDER, recipients=[recipient], data=message(), smtputf8=smtputf8
    )
    after = await pool.send(mail_from=SENDER, recipients=["zoe@example.net"], data=message())

    [only] = result.results
    assert (only.outcome, only.code) == (Outcome.HARD, None)
    assert "SMTPUTF8" in only.reply
    assert f"{smtp_ascii_only.host}:{smtp_ascii_only.port} does not support it" in only.reply
    assert after.results[0].outcome is Outcome.DELIVERED
    assert len(smtp_ascii_only.messages) == 1
    assert smtp_ascii_only.connections == 1


# --- TLS and AUTH --------------------------------------------------------------------------


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.TLS])
async def test_tls_and_auth(
    request: pytest.FixtureRequest,
    tls_ca_bundle: Path,
    pool_for: Callable[..., SmtpPool],
    security: Security,
) -> None:
    server: SmtpServer = request.getfixturevalue(
        "smtp_starttls" if security is Security.STARTTLS else "smtp_implicit_tls"
    )
    target = endpoint(server, security, username=SMTP_USER, password=SMTP_PASSWORD)
    pool = pool_for(target, ca_bundle=tls_ca_bundle)

    for _ in range(2):
        result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
        assert result.results[0].outcome is Outcome.DELIVERED

    assert [(m.tls, m.login) for m in server.messages] == [(True, SMTP_USER)] * 2
    assert [a.success for a in server.auth_attempts] == [True]  # one session, one login
    assert server.connections == 1


@pytest.mark.parametrize("security", [Security.NONE, Security.STARTTLS, Security.TLS])
def test_under_uvloop(
    request: pytest.FixtureRequest, tls_ca_bundle: Path, security: Security
) -> None:
    # uvloop's transports are not asyncio.Transport subclasses; the pool takes them over too.
    uvloop = pytest.importorskip("uvloop")
    fixture = {
        Security.NONE: "smtp_auth_plaintext",
        Security.STARTTLS: "smtp_starttls",
        Security.TLS: "smtp_implicit_tls",
    }[security]
    server: SmtpServer = request.getfixturevalue(fixture)
    target = endpoint(server, security, username=SMTP_USER, password=SMTP_PASSWORD)

    async def main() -> tuple[Outcome, ...]:
        async with SmtpPool(target, ca_bundle=tls_ca_bundle) as pool:
            first = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
            second = await pool.send(
                mail_from=SENDER, recipients=["a@example.net", "b@example.net"], data=message()
            )
            return tuple(r.outcome for r in (*first.results, *second.results))

    assert uvloop.run(main()) == (Outcome.DELIVERED,) * 3
    assert [(m.tls, m.login) for m in server.messages] == [
        (security is not Security.NONE, SMTP_USER)
    ] * 2
    assert server.connections == 1


async def test_wrong_password_is_soft_with_the_auth_detail(
    smtp_auth_plaintext: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    wrong = "wr0ng-Pa55word"
    target = endpoint(smtp_auth_plaintext, username=SMTP_USER, password=wrong)
    pool = pool_for(target)

    result = await pool.send(
        mail_from=SENDER, recipients=["a@example.net", "b@example.net"], data=message()
    )

    for r in result.results:
        assert (r.outcome, r.code) == (Outcome.SOFT, 535)
        assert "the server rejected the login: 535" in r.reply
        assert wrong not in r.reply
    assert smtp_auth_plaintext.messages == []
    assert pool.stats.open == 0


async def test_untrusted_certificate_is_soft(
    smtp_implicit_tls: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    target = endpoint(smtp_implicit_tls, Security.TLS, username=SMTP_USER, password=SMTP_PASSWORD)
    pool = pool_for(target)  # no CA bundle: the test CA is not trusted

    result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())

    [only] = result.results
    assert only.outcome is Outcome.SOFT
    assert "certificate verification failed" in only.reply


# --- broken connections --------------------------------------------------------------------


async def test_refused_port_is_soft_for_everyone(
    refused_port: int, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(SmtpEndpoint(host="127.0.0.1", port=refused_port, security=Security.NONE))

    result = await pool.send(
        mail_from=SENDER, recipients=["a@example.net", "b@example.net"], data=message()
    )

    assert [(r.recipient, r.outcome, r.code) for r in result.results] == [
        ("a@example.net", Outcome.SOFT, None),
        ("b@example.net", Outcome.SOFT, None),
    ]
    assert f"connection refused by 127.0.0.1:{refused_port}" in result.results[0].reply
    assert (pool.stats.open, pool.stats.opened) == (0, 0)


async def test_stalled_server_times_out_soft(
    stalled_server: tuple[str, int], pool_for: Callable[..., SmtpPool]
) -> None:
    host, port = stalled_server
    target = SmtpEndpoint(host=host, port=port, security=Security.NONE)
    pool = pool_for(target, limits=PoolLimits(timeout=1))

    result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())

    [only] = result.results
    assert (only.outcome, only.code) == (Outcome.SOFT, None)
    assert "timed out after 1s waiting for the greeting" in only.reply
    assert pool.stats.open == 0


async def test_stall_after_rcpt_times_out_and_the_connection_is_dropped(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(timeout=1))

    stalled = await pool.send(
        mail_from=SENDER,
        recipients=["reject@example.net", "ok@example.net", "stall@example.net"],
        data=message(),
    )
    after = await pool.send(mail_from=SENDER, recipients=["ok@example.net"], data=message())

    rejected, ok, stall = stalled.results
    assert (rejected.outcome, rejected.code) == (Outcome.HARD, 550)  # settled before the stall
    for r in (ok, stall):
        assert (r.outcome, r.code) == (Outcome.SOFT, None)
        assert "timed out after 1s waiting for the reply to RCPT TO" in r.reply
    assert after.results[0].outcome is Outcome.DELIVERED
    assert [m.rcpt_tos for m in smtp_scripted.messages] == [["ok@example.net"]]
    assert smtp_scripted.connections == 2  # the stalled one was not reused


async def test_hangup_after_the_message_is_soft(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(
        mail_from=SENDER, recipients=["hangup@example.net", "reject@example.net"], data=message()
    )

    hangup, rejected = result.results
    assert (hangup.outcome, hangup.code) == (Outcome.SOFT, None)
    assert hangup.reply == (
        f"{smtp_scripted.host}:{smtp_scripted.port} closed the connection during DATA"
    )
    assert (rejected.outcome, rejected.code) == (Outcome.HARD, 550)
    assert smtp_scripted.messages == []
    assert pool.stats.open == 0
    assert pool.stats.reconnects == 0  # not stale: the server had answered


async def test_connection_closed_while_idle_is_replaced_transparently(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted))
    first = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message("1"))

    smtp_scripted.hang_up_on_next_mail = True  # the pooled connection dies at its next MAIL
    second = await pool.send(mail_from=SENDER, recipients=["b@example.net"], data=message("2"))

    assert [first.results[0].outcome, second.results[0].outcome] == [Outcome.DELIVERED] * 2
    assert [m.parsed["Subject"] for m in smtp_scripted.messages] == ["1", "2"]
    assert smtp_scripted.connections == 2
    stats = pool.stats
    assert (stats.reconnects, stats.opened, stats.messages_sent) == (1, 2, 2)


async def test_fresh_connection_dying_is_not_retried(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    smtp_scripted.hang_up_on_next_mail = True
    pool = pool_for(endpoint(smtp_scripted))

    result = await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())

    [only] = result.results
    assert (only.outcome, only.code) == (Outcome.SOFT, None)
    assert "closed the connection during MAIL FROM" in only.reply
    assert (smtp_scripted.connections, pool.stats.reconnects) == (1, 0)


# --- closing -------------------------------------------------------------------------------


async def test_idle_timeout_closes_connections(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(idle_timeout=0.2, timeout=TIMEOUT))
    await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())

    await eventually(lambda: pool.stats.open == 0)
    await eventually(lambda: smtp_scripted.open_connections == 0)
    after = await pool.send(mail_from=SENDER, recipients=["b@example.net"], data=message())

    assert any(b"QUIT\r\n" in chunk for chunk in smtp_scripted.chunks)
    assert after.results[0].outcome is Outcome.DELIVERED
    assert smtp_scripted.connections == 2


async def test_close_quits_idle_connections(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(max_connections=3, timeout=TIMEOUT))
    await asyncio.gather(
        *(
            pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
            for _ in range(6)
        )
    )
    opened = smtp_scripted.connections

    await pool.close()

    assert pool.stats.open == 0
    await eventually(lambda: smtp_scripted.open_connections == 0)
    assert sum(chunk.count(b"QUIT\r\n") for chunk in smtp_scripted.chunks) == opened
    with pytest.raises(RuntimeError, match="closed"):
        await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())


async def test_close_aborts_busy_connections_and_answers_waiting_senders(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(max_connections=1, timeout=30))
    busy = asyncio.create_task(
        pool.send(mail_from=SENDER, recipients=["stall@example.net"], data=message())
    )
    waiting = asyncio.create_task(
        pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
    )
    await eventually(lambda: any(b"stall@" in chunk for chunk in smtp_scripted.chunks))
    assert pool.stats.waiting == 1

    await pool.close()

    for task, reply in [
        (busy, "the SMTP connection pool was closed while the message was sent"),
        (waiting, "the SMTP connection pool was closed before the message was sent"),
    ]:
        [only] = (await task).results
        assert (only.outcome, only.code, only.reply) == (Outcome.SOFT, None, reply)
    assert pool.stats.open == 0
    await eventually(lambda: smtp_scripted.open_connections == 0)
    assert smtp_scripted.messages == []


async def test_close_calls_off_a_connection_being_opened(
    stalled_server: tuple[str, int], pool_for: Callable[..., SmtpPool]
) -> None:
    host, port = stalled_server
    pool = pool_for(SmtpEndpoint(host=host, port=port, security=Security.NONE))
    sending = asyncio.create_task(
        pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())
    )
    await eventually(lambda: pool.stats.open == 1)  # connected, waiting for the greeting

    await pool.close()

    assert pool.stats.open == 0
    [only] = (await sending).results
    assert (only.outcome, only.reply) == (
        Outcome.SOFT,
        "the SMTP connection pool was closed before the message was sent",
    )


async def test_close_with_drain_lets_started_sends_finish(
    smtp_scripted: SmtpServer, pool_for: Callable[..., SmtpPool]
) -> None:
    pool = pool_for(endpoint(smtp_scripted), limits=PoolLimits(max_connections=1, timeout=TIMEOUT))
    sends = [
        asyncio.create_task(
            pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message(f"{n}"))
        )
        for n in range(3)
    ]
    await eventually(lambda: pool.stats.waiting == 2)

    await pool.close(drain=True)

    assert [(await task).results[0].outcome for task in sends] == [Outcome.DELIVERED] * 3
    assert [m.parsed["Subject"] for m in smtp_scripted.messages] == ["0", "1", "2"]
    assert pool.stats.open == 0
    await eventually(lambda: smtp_scripted.open_connections == 0)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.send(mail_from=SENDER, recipients=["a@example.net"], data=message())


# --- programming errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail_from", "recipients", "error"),
    [
        (SENDER, "a@example.net", TypeError),
        (SENDER, [], ValueError),
        (SENDER, [""], ValueError),
        (SENDER, ["a@example.net\r\nRSET"], ValueError),
        ("a@example.com> SIZE=1", ["b@example.net"], ValueError),
    ],
)
async def test_unusable_arguments_raise(
    refused_port: int,
    pool_for: Callable[..., SmtpPool],
    mail_from: str,
    recipients: Any,
    error: type[Exception],
) -> None:
    pool = pool_for(SmtpEndpoint(host="127.0.0.1", port=refused_port, security=Security.NONE))

    with pytest.raises(error):
        await pool.send(mail_from=mail_from, recipients=recipients, data=b"x")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        PoolLimits(max_connections=0)
    with pytest.raises(ValueError, match="timeout"):
        PoolLimits(timeout=0)


# --- the wire format, without sockets ------------------------------------------------------


def test_reply_parser_splits_replies_however_they_arrive() -> None:
    stream = (
        b"250-smtp.test\r\n250-PIPELINING\r\n250 HELP\r\n250 OK\r\n550 5.1.1 No\r\n354 Go on\r\n"
    )
    expected = [
        Reply(250, "smtp.test\nPIPELINING\nHELP"),
        Reply(250, "OK"),
        Reply(550, "5.1.1 No"),
        Reply(354, "Go on"),
    ]
    for size in (1, 2, 7, len(stream)):
        parser = _ReplyParser()
        replies = [
            r for i in range(0, len(stream), size) for r in parser.feed(stream[i : i + size])
        ]
        assert replies == expected


def test_reply_parser_takes_bare_lf_and_bare_codes() -> None:
    assert _ReplyParser().feed(b"250\n221 2.0.0 Bye\n") == [Reply(250, ""), Reply(221, "2.0.0 Bye")]


@pytest.mark.parametrize(
    "garbage", [b"HTTP/1.1 400 Bad Request\r\n", b"25x OK\r\n", b"2500 OK\r\n"]
)
def test_reply_parser_refuses_garbage(garbage: bytes) -> None:
    with pytest.raises(_MalformedReply):
        _ReplyParser().feed(garbage)


def test_reply_parser_refuses_endless_replies() -> None:
    parser = _ReplyParser()
    with pytest.raises(_MalformedReply, match="longer than"):
        for _ in range(10_000):
            parser.feed(b"250-" + b"x" * 100 + b"\r\n")


def test_reply_str_is_one_line() -> None:
    assert str(Reply(250, "first\nsecond")) == "250 first second"


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\nb", b"a\r\nb\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".\n.x\r..\rb", b"..\r\n..x\r\n...\r\nb\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
    ],
)
def test_dot_stuffing(data: bytes, wire: bytes) -> None:
    assert _dot_stuffed(data) == wire
