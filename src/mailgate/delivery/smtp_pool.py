"""A pool of SMTP connections to one provider: deliver a message, learn each recipient's fate.

:meth:`SmtpPool.send` never raises for an SMTP-level failure. It returns a
:class:`SendResult` with one :class:`RecipientResult` per recipient, in order::

    RCPT 2xx, then a 2xx after the message          -> DELIVERED  (the server's reply)
    RCPT 5xx                                        -> HARD       for that recipient
    RCPT 4xx                                        -> SOFT       for that recipient
    MAIL 5xx (the sender refused)                   -> HARD       for everyone
    DATA or the reply after the message, 5xx / 4xx  -> HARD / SOFT for the accepted ones
    a 530 "authentication required", at any step    -> SOFT       (the provider's settings)
    connect, TLS or AUTH failure, timeout,
    disconnect, garbage                             -> SOFT       for everyone not yet settled,
                                                                  with the error's detail
    smtputf8 needed but not offered by the server   -> HARD       for everyone

Connections (:class:`~mailgate.delivery.transport.SmtpConnection`, made by
:func:`~mailgate.delivery.transport.connect`) are opened on demand, up to
``max_connections``; further senders wait their turn (first come, first served). A
connection goes back to the pool after each message and is closed after
``max_messages_per_connection`` messages, after ``idle_timeout`` seconds unused (a reaper
task, and a check at checkout), and after any failure. One found dead when it is reused (the
server closed it while it sat idle) is dropped and the message is sent once more on a fresh
connection, without counting as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from mailgate.delivery.transport import (
    Envelope,
    Reply,
    SmtpConnection,
    Transaction,
    connect,
    load_tls_context,
)
from mailgate.domain import Outcome, SmtpEndpoint
from mailgate.errors import SmtpConnectionError, SmtpError

__all__ = ["PoolLimits", "PoolStats", "RecipientResult", "SendResult", "SmtpPool"]

_QUIT_TIMEOUT = 5.0  # seconds to wait for the reply to QUIT when closing politely
_AUTHENTICATION_REQUIRED = 530  # RFC 4954: a refusal that blames our settings, not the address
_POOL_CLOSED = "the SMTP connection pool was closed before the message was sent"
_POOL_CLOSED_WHILE_SENDING = "the SMTP connection pool was closed while the message was sent"


@dataclass(frozen=True)
class RecipientResult:
    """What one delivery attempt did for one recipient."""

    recipient: str
    outcome: Outcome  # DELIVERED (2xx), SOFT (4xx, timeout, disconnect), HARD (5xx)
    code: int | None  # the SMTP reply code, when there was a reply
    reply: str  # the server's reply ("550 5.1.1 User unknown") or our explanation


@dataclass(frozen=True)
class SendResult:
    results: tuple[RecipientResult, ...]  # one per recipient, in the order given
    # Nothing of the message reached the server (no connection, TLS or AUTH failed): another
    # provider may take it at once without any risk of a duplicate.
    unsent: bool = False

    @property
    def delivered(self) -> tuple[RecipientResult, ...]:
        return self._having(Outcome.DELIVERED)

    @property
    def soft(self) -> tuple[RecipientResult, ...]:
        return self._having(Outcome.SOFT)

    @property
    def hard(self) -> tuple[RecipientResult, ...]:
        return self._having(Outcome.HARD)

    def _having(self, outcome: Outcome) -> tuple[RecipientResult, ...]:
        return tuple(result for result in self.results if result.outcome is outcome)


@dataclass(frozen=True)
class PoolLimits:
    max_connections: int = 10
    max_messages_per_connection: int = 100
    idle_timeout: float = 30.0  # seconds: close connections unused for longer
    timeout: float = 30.0  # seconds, per command; the message body gets more when large

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_messages_per_connection < 1:
            raise ValueError("max_connections and max_messages_per_connection must be >= 1")
        if self.idle_timeout <= 0 or self.timeout <= 0:
            raise ValueError("idle_timeout and timeout must be positive")


@dataclass(frozen=True)
class PoolStats:
    open: int  # connections open now: idle, busy, being opened, or saying QUIT
    idle: int  # waiting in the pool for the next message
    busy: int  # sending a message
    waiting: int  # send() calls waiting for a free connection
    opened: int  # connections opened since the pool was made
    messages_sent: int  # messages the server accepted (a 2xx after the message)
    reconnects: int  # messages sent again because a pooled connection had died idle


@dataclass(frozen=True)
class _Parked:
    connection: SmtpConnection
    since: float  # event loop time it was parked


class _PoolClosed(Exception):
    pass


class SmtpPool:
    """Connections to one upstream, shared by concurrent :meth:`send` calls.

    Use it as an async context manager, or call :meth:`close` when done. ``pipelining=False``
    sends one command at a time even to servers that offer PIPELINING.
    """

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        *,
        limits: PoolLimits = PoolLimits(),
        ca_bundle: Path | None = None,
        helo_name: str | None = None,
        pipelining: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self._ca_bundle = ca_bundle
        self._helo_name = helo_name
        self._pipelining = pipelining
        self._turns = asyncio.Semaphore(limits.max_connections)  # FIFO: waiters served in order
        self._idle: list[_Parked] = []  # oldest first; checkout takes the newest
        self._busy: set[SmtpConnection] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._tls_loaded = False
        self._closing = False  # no new sends
        self._closed = False  # connections torn down
        self._settled = asyncio.Event()  # set when no send() is in progress
        self._opening: set[asyncio.Task[SmtpConnection]] = set()
        self._waiting = self._sending = 0
        self._opened = self._messages_sent = self._reconnects = 0

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stats(self) -> PoolStats:
        idle = sum(parked.connection.usable for parked in self._idle)
        busy = len(self._busy)
        return PoolStats(
            open=idle + busy + len(self._opening) + len(self._retiring),
            idle=idle,
            busy=busy,
            waiting=self._waiting,
            opened=self._opened,
            messages_sent=self._messages_sent,
            reconnects=self._reconnects,
        )

    async def send(
        self, *, mail_from: str, recipients: Sequence[str], data: bytes, smtputf8: bool = False
    ) -> SendResult:
        """Deliver ``data`` from ``mail_from`` to ``recipients``; one result per recipient.

        ``smtputf8`` is implied by a non-ASCII address. Raises only for a programming error:
        TypeError or ValueError for unusable arguments, RuntimeError after :meth:`close`.
        """
        if isinstance(recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        if self._closing:
            raise RuntimeError("the SMTP pool is closed")
        addresses = (mail_from, *recipients)
        envelope = Envelope(
            mail_from,
            tuple(recipients),
            data,
            smtputf8=smtputf8 or not all(address.isascii() for address in addresses),
        )
        self._sending += 1
        try:
            self._waiting += 1
            try:
                await self._turns.acquire()
            finally:
                self._waiting -= 1
            try:
                return await self._deliver(envelope)
            finally:
                self._turns.release()
        finally:
            self._sending -= 1
            if not self._sending:
                self._settled.set()

    async def close(self, *, drain: bool = False) -> None:
        """QUIT every idle connection, abort busy ones; senders still waiting get SOFT.

        With ``drain=True`` the sends already started, waiting ones included, finish first
        (use it to retire a pool whose settings changed). Either way, later sends raise.
        """
        self._closing = True
        if drain and self._sending:
            self._settled.clear()
            await self._settled.wait()
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for connection in self._busy:
            connection.abort()
        opening = set(self._opening)
        for attempt in opening:
            attempt.cancel()
        if opening:
            await asyncio.wait(opening)  # their sockets are closed once they end
        idle, self._idle = self._idle, []
        for parked in idle:
            self._retire(parked.connection)
        while self._retiring:
            await asyncio.wait(set(self._retiring))
        await asyncio.sleep(0)  # let the transports' connection_lost() close the sockets

    # --- one message --------------------------------------------------------------------

    async def _deliver(self, envelope: Envelope) -> SendResult:
        fresh = False
        while True:
            try:
                connection, reused = await self._checkout(fresh=fresh)
            except SmtpError as error:
                soft = _everyone(envelope, Outcome.SOFT, error.smtp_code, error.detail)
                return SendResult(soft, unsent=True)
            except _PoolClosed:
                return SendResult(
                    _everyone(envelope, Outcome.SOFT, None, _POOL_CLOSED), unsent=True
                )
            if envelope.smtputf8 and not connection.smtputf8:
                self._checkin(connection)
                return SendResult(_everyone(envelope, Outcome.HARD, None, self._no_smtputf8()))
            try:
                transaction = await connection.transact(envelope)
            finally:
                self._checkin(connection)
            if self._closed and transaction.failure is not None:  # close() aborted it
                failure = SmtpConnectionError(_POOL_CLOSED_WHILE_SENDING)
                transaction = dataclasses.replace(transaction, failure=failure)
            elif transaction.stale and reused and not fresh:
                self._reconnects += 1
                fresh = True  # the server closed it while idle: once more, on a new one
                continue
            if transaction.final is not None and transaction.final.positive:
                self._messages_sent += 1
            return SendResult(_outcomes(envelope.recipients, transaction))

    def _no_smtputf8(self) -> str:
        return (
            "the message needs SMTPUTF8 (non-ASCII addresses or headers), but "
            f"{self.endpoint.host}:{self.endpoint.port} does not support it"
        )

    # --- connections --------------------------------------------------------------------

    async def _checkout(self, *, fresh: bool) -> tuple[SmtpConnection, bool]:
        """A connection for one message, and whether it has sent messages before."""
        if self._closed:
            raise _PoolClosed
        now = asyncio.get_running_loop().time()
        while self._idle and not fresh:
            parked = self._idle.pop()
            if parked.connection.usable and now - parked.since < self.limits.idle_timeout:
                self._busy.add(parked.connection)
                return parked.connection, True
            self._retire(parked.connection)
        connection = await self._open()
        if self._closed:  # close() ran while we were connecting
            connection.abort()
            raise _PoolClosed
        self._busy.add(connection)
        return connection, False

    async def _open(self) -> SmtpConnection:
        # Connections saying QUIT still count against max_connections: wait for them.
        while self._retiring and self._count() >= self.limits.max_connections:
            await asyncio.wait(set(self._retiring), return_when=asyncio.FIRST_COMPLETED)
        if not self._tls_loaded:
            self._tls_context = await load_tls_context(self.endpoint, self._ca_bundle)
            self._tls_loaded = True
        # In a task of its own, so that close() can call off a connection being opened.
        attempt = asyncio.get_running_loop().create_task(
            connect(
                self.endpoint,
                timeout=self.limits.timeout,
                tls_context=self._tls_context,
                helo_name=self._helo_name,
                pipelining=self._pipelining,
            )
        )
        self._opening.add(attempt)
        try:
            connection = await attempt
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and attempt.cancelled() and not (current and current.cancelling()):
                raise _PoolClosed from None  # close() called it off, not our caller
            raise
        finally:
            self._opening.discard(attempt)
        self._opened += 1
        return connection

    def _count(self) -> int:
        return len(self._idle) + len(self._busy) + len(self._opening) + len(self._retiring)

    def _checkin(self, connection: SmtpConnection) -> None:
        self._busy.discard(connection)
        worn_out = connection.transactions >= self.limits.max_messages_per_connection
        if self._closed or worn_out or not connection.usable:
            self._retire(connection)
            return
        loop = asyncio.get_running_loop()
        self._idle.append(_Parked(connection, loop.time()))
        if self._reaper is None:
            self._reaper = loop.create_task(self._reap())

    def _retire(self, connection: SmtpConnection) -> None:
        """Close: politely (QUIT, in a task close() waits for) when the session is sound."""
        if not connection.usable:
            connection.abort()
            return
        timeout = min(self.limits.timeout, _QUIT_TIMEOUT)
        task = asyncio.get_running_loop().create_task(connection.quit(timeout=timeout))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _reap(self) -> None:
        """Close connections idle for longer than idle_timeout; ends when none is idle."""
        loop = asyncio.get_running_loop()
        try:
            while self._idle:
                oldest = self._idle[0]
                delay = oldest.since + self.limits.idle_timeout - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif self._idle and self._idle[0] is oldest:
                    self._retire(self._idle.pop(0).connection)
        finally:
            self._reaper = None


# --- outcomes ----------------------------------------------------------------------------


def _outcomes(recipients: Sequence[str], transaction: Transaction) -> tuple[RecipientResult, ...]:
    """One result per recipient from the replies the transaction got."""
    mail = transaction.mail
    if mail is not None and not mail.positive:  # the sender was refused: nobody gets it
        return tuple(_refused(recipient, mail) for recipient in recipients)
    return tuple(
        _outcome(recipient, reply, transaction)
        for recipient, reply in zip(
            recipients, _padded(transaction.rcpts, len(recipients)), strict=True
        )
    )


def _outcome(recipient: str, rcpt: Reply | None, transaction: Transaction) -> RecipientResult:
    if rcpt is not None and not rcpt.positive:
        return _refused(recipient, rcpt)
    if rcpt is not None:  # accepted; what became of the message decides
        data, final = transaction.data, transaction.final
        if final is not None:
            if final.positive:
                return RecipientResult(recipient, Outcome.DELIVERED, final.code, str(final))
            return _refused(recipient, final)
        if data is not None and data.code != 354:  # DATA itself refused
            return _refused(recipient, data)
    failure = transaction.failure
    if failure is None:  # cannot happen: a transaction ends with a reply or a failure
        return RecipientResult(recipient, Outcome.SOFT, None, "the transaction did not finish")
    return RecipientResult(recipient, Outcome.SOFT, failure.smtp_code, failure.detail)


def _refused(recipient: str, reply: Reply) -> RecipientResult:
    hard = reply.code >= 500 and reply.code != _AUTHENTICATION_REQUIRED
    return RecipientResult(
        recipient, Outcome.HARD if hard else Outcome.SOFT, reply.code, str(reply)
    )


def _padded(replies: tuple[Reply, ...], length: int) -> list[Reply | None]:
    return [*replies, *([None] * (length - len(replies)))]


def _everyone(
    envelope: Envelope, outcome: Outcome, code: int | None, reply: str
) -> tuple[RecipientResult, ...]:
    return tuple(RecipientResult(r, outcome, code, reply) for r in envelope.recipients)
