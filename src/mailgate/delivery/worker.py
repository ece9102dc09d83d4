"""The delivery worker: claim -> load -> route -> send -> record, one small step each.

Any number of workers (in ``mailgate serve``, or ``mailgate worker`` processes on other
hosts) share the queue in the messages table. A message is sent with no database session
open; its outcome is recorded in one transaction afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.config import Settings
from mailgate.delivery.circuit import CircuitBreaker
from mailgate.delivery.queue import claim_due
from mailgate.delivery.retry_policy import RetryPolicy
from mailgate.delivery.router import QuotaGate, Route, Router
from mailgate.delivery.smtp_pool import PoolLimits, RecipientResult, SmtpPool
from mailgate.domain import (
    EventType,
    MessageStatus,
    Outcome,
    ProviderStatus,
    RecipientStatus,
)
from mailgate.i18n import N_, stored_message
from mailgate.security.secrets_box import SecretBox
from mailgate.services.providers import endpoint_of, quotas_of
from mailgate.services.suppressions import SuppressionReason, suppress
from mailgate.store.db import Database
from mailgate.store.models import (
    QUEUED_STATUSES,
    Event,
    Message,
    MessageContent,
    MessageRecipient,
    Provider,
    utcnow,
)

__all__ = ["Worker", "final_status"]

log = structlog.get_logger(__name__)

PENDING: Final = (RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value)
ROUTES_TTL: Final = 2.0  # seconds a worker trusts its copy of an account's providers
THROTTLE_DELAY: Final = timedelta(seconds=1)  # every provider at its quota: look again soon
LAST_USED_EVERY: Final = 5.0  # seconds between writes of a provider's last_used_at


def final_status(statuses: Sequence[str]) -> MessageStatus:
    """The status of a message none of whose recipients is pending any more."""
    kinds = set(statuses)
    if kinds <= {RecipientStatus.DELIVERED.value}:
        return MessageStatus.DELIVERED
    if RecipientStatus.DELIVERED.value in kinds:
        return MessageStatus.PARTIAL
    if RecipientStatus.BOUNCED.value in kinds:
        return MessageStatus.BOUNCED
    if kinds <= {RecipientStatus.REJECTED.value}:
        return MessageStatus.REJECTED
    if kinds <= {RecipientStatus.CANCELLED.value}:
        return MessageStatus.CANCELLED
    return MessageStatus.FAILED


@dataclass(frozen=True)
class _Job:
    """A claimed message, loaded: everything sending needs, no ORM objects."""

    message_id: int
    account_id: int
    explicit_provider_id: int | None
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    smtputf8: bool
    attempts: int
    expires_at: datetime


@dataclass(frozen=True)
class _Attempt:
    results: tuple[RecipientResult, ...]
    route: Route | None
    throttled: bool = False  # no provider could take it now (quota or rest): not a failure
    opened: tuple[tuple[int, str], ...] = ()  # circuits this attempt tripped: (id, reason)
    closed: tuple[int, ...] = ()  # circuits this attempt closed again


class Worker:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        settings: Settings,
        *,
        worker_id: str | None = None,
        router: Router | None = None,
    ) -> None:
        self.database = database
        self.box = box
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.circuits = CircuitBreaker(
            settings.circuit_failure_threshold, settings.circuit_cooldown_seconds
        )
        self.quotas = QuotaGate(settings.redis_url)
        self.router = router or Router(self.quotas, self.circuits)
        self.retry = RetryPolicy(settings.retry_schedule)
        self.limits = PoolLimits(
            max_connections=settings.pool_max_connections,
            max_messages_per_connection=settings.pool_max_messages_per_connection,
            idle_timeout=settings.pool_idle_seconds,
            timeout=settings.smtp_timeout,
        )
        self._pools: dict[int, tuple[str, SmtpPool]] = {}
        self._routes: dict[tuple[int, int | None], tuple[float, list[Route]]] = {}
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._last_used_written: dict[int, float] = {}

    # --- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """New mail was committed: look at the queue now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then let messages in flight finish."""
        concurrency = self.settings.worker_concurrency
        while not stop.is_set():
            room = concurrency - len(self._in_flight)
            if room <= 0:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                claimed = await self.claim(min(room, self.settings.queue_batch_size))
            except Exception as exc:  # the database is away or overloaded: back off, retry
                log.warning("claiming from the queue failed", error=repr(exc)[:300])
                await asyncio.sleep(self.settings.queue_poll_seconds)
                continue
            for message_id in claimed:
                task = asyncio.create_task(self.deliver(message_id))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    waiter = asyncio.create_task(self._wake.wait())
                    stopper = asyncio.create_task(stop.wait())
                    try:
                        await asyncio.wait(
                            {waiter, stopper},
                            timeout=self.settings.queue_poll_seconds,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        waiter.cancel()
                        stopper.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def run_until_idle(self, limit_seconds: float = 30.0) -> None:
        """Deliver everything due now, then return (tests, one-shot runs)."""
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            claimed = await self.claim(self.settings.queue_batch_size)
            if not claimed:
                return
            await asyncio.gather(*(self.deliver(message_id) for message_id in claimed))
        raise TimeoutError("the queue did not drain in time")

    async def claim(self, limit: int) -> list[int]:
        async with self.database.session() as session:
            return await claim_due(
                session,
                worker_id=self.worker_id,
                limit=limit,
                lease_seconds=self.settings.queue_lease_seconds,
                now=utcnow(),
            )

    async def close(self) -> None:
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for _, pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        await self.quotas.close()

    # --- one message ----------------------------------------------------------------------

    async def deliver(self, message_id: int) -> None:
        """Every step for one claimed message. Errors leave it leased: it is retried later."""
        try:
            job = await self._load(message_id)
            if job is None:
                return
            if utcnow() >= job.expires_at:
                await self._record(job, _Attempt(results=(), route=None), expired=True)
                return
            attempt = await self._send(job)
            await self._record(job, attempt)
        except Exception:
            log.exception("delivery failed unexpectedly", message_id=message_id)

    async def _load(self, message_id: int) -> _Job | None:
        async with self.database.session() as session:
            message = await session.get(Message, message_id)
            if (
                message is None
                or message.lease_owner != self.worker_id
                or message.status not in QUEUED_STATUSES
            ):
                return None
            recipients = (
                await session.execute(
                    select(MessageRecipient.address)
                    .where(
                        MessageRecipient.message_id == message_id,
                        MessageRecipient.status.in_(PENDING),
                    )
                    .order_by(MessageRecipient.id)
                )
            ).scalars()
            content = await session.get(MessageContent, message_id)
            return _Job(
                message_id=message.id,
                account_id=message.account_id,
                explicit_provider_id=message.provider_id,
                envelope_from=message.envelope_from,
                recipients=tuple(recipients),
                raw=content.raw if content is not None else b"",
                smtputf8=message.smtputf8,
                attempts=message.attempts,
                expires_at=message.expires_at,
            )

    async def _routes_for(self, job: _Job) -> list[Route]:
        key = (job.account_id, job.explicit_provider_id)
        cached = self._routes.get(key)
        if cached is not None and time.monotonic() - cached[0] < ROUTES_TTL:
            return cached[1]
        async with self.database.session() as session:
            query = select(Provider).where(
                Provider.account_id == job.account_id,
                Provider.is_enabled,
                Provider.driver == "smtp",
            )
            if job.explicit_provider_id is not None:
                query = query.where(Provider.id == job.explicit_provider_id)
            providers = list((await session.execute(query.order_by(Provider.id))).scalars())
        routes = [
            Route(
                provider_id=p.id,
                name=p.name,
                percentage=p.percentage,
                quotas=quotas_of(p),
                endpoint=endpoint_of(p, self.box),
                version=_version(p),
            )
            for p in providers
        ]
        self._routes[key] = (time.monotonic(), routes)
        return routes

    def _pool(self, route: Route) -> SmtpPool:
        found = self._pools.get(route.provider_id)
        if found is not None and found[0] == route.version:
            return found[1]
        if found is not None:  # settings changed: retire the old connections once idle
            retiring = asyncio.get_running_loop().create_task(found[1].close(drain=True))
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
        pool = SmtpPool(
            route.endpoint,
            limits=self.limits,
            ca_bundle=self.settings.smtp_ca_bundle,
            helo_name=self.settings.smtp_helo_name,
        )
        self._pools[route.provider_id] = (route.version, pool)
        return pool

    async def _send(self, job: _Job) -> _Attempt:
        """Route and send; on a provider-level failure fail over to the next provider."""
        routes = await self._routes_for(job)
        if not routes:
            reason = (
                "no enabled provider"
                if job.explicit_provider_id is None
                else ("the chosen provider is disabled or deleted")
            )
            return _Attempt(results=self._all(job, Outcome.SOFT, reason), route=None)
        tried: set[int] = set()
        opened: list[tuple[int, str]] = []
        closed: list[int] = []
        last: _Attempt | None = None
        while True:
            route = await self.router.choose(
                routes, exclude=frozenset(tried), explicit=job.explicit_provider_id is not None
            )
            if route is None:
                if last is not None:
                    return _Attempt(
                        last.results, last.route, opened=tuple(opened), closed=tuple(closed)
                    )
                return _Attempt(
                    results=self._all(job, Outcome.SOFT, "every provider is busy or resting"),
                    route=None,
                    throttled=True,
                )
            result = await self._pool(route).send(
                mail_from=job.envelope_from,
                recipients=job.recipients,
                data=job.raw,
                smtputf8=job.smtputf8,
            )
            if result.unsent:  # the provider failed before anything was sent: fail over
                tried.add(route.provider_id)
                if self.circuits.failed(route.provider_id):
                    opened.append((route.provider_id, result.results[0].reply))
                last = _Attempt(result.results, route)
                continue
            if self.circuits.succeeded(route.provider_id):
                closed.append(route.provider_id)
            return _Attempt(result.results, route, opened=tuple(opened), closed=tuple(closed))

    @staticmethod
    def _all(job: _Job, outcome: Outcome, reply: str) -> tuple[RecipientResult, ...]:
        return tuple(RecipientResult(r, outcome, None, reply) for r in job.recipients)

    # --- recording ------------------------------------------------------------------------

    async def _record(self, job: _Job, attempt: _Attempt, *, expired: bool = False) -> None:
        now = utcnow()
        async with self.database.session() as session:
            message = await session.get(Message, job.message_id)
            if message is None or message.lease_owner != self.worker_id:
                return  # our lease ran out and someone else has it now
            rows = {
                r.address: r
                for r in (
                    await session.execute(
                        select(MessageRecipient).where(
                            MessageRecipient.message_id == job.message_id
                        )
                    )
                ).scalars()
            }
            provider_id = attempt.route.provider_id if attempt.route else None
            events: list[Event] = []

            def event(kind: EventType, recipient: str | None, **extra: object) -> None:
                events.append(
                    Event(
                        account_id=job.account_id,
                        message_id=job.message_id,
                        type=kind.value,
                        recipient=recipient,
                        provider_id=provider_id,
                        created_at=now,
                        **extra,
                    )
                )

            soft: list[MessageRecipient] = []
            for result in attempt.results:
                row = rows.get(result.recipient)
                if row is None:
                    continue
                if not attempt.throttled:
                    row.attempts += 1
                row.last_code = result.code
                row.last_reply = result.reply[:1000]
                row.updated_at = now
                if result.outcome is Outcome.DELIVERED:
                    row.status = RecipientStatus.DELIVERED.value
                    event(
                        EventType.DELIVERED,
                        row.address,
                        smtp_code=result.code,
                        detail=result.reply[:1000],
                    )
                elif result.outcome is Outcome.HARD:
                    row.status = RecipientStatus.BOUNCED.value
                    event(
                        EventType.BOUNCE,
                        row.address,
                        smtp_code=result.code,
                        detail=result.reply[:1000],
                    )
                    await suppress(
                        session=session,
                        account_id=job.account_id,
                        address=row.address,
                        reason=SuppressionReason.HARD_BOUNCE,
                        detail=result.reply[:500],
                    )
                else:
                    soft.append(row)

            if attempt.throttled:
                message.due_at = now + THROTTLE_DELAY
            elif soft or expired:
                retry_at = (
                    None
                    if expired
                    else self.retry.next_attempt(
                        failures=job.attempts, now=now, expires_at=job.expires_at
                    )
                )
                give_up = retry_at is None
                for row in (
                    soft if not expired else [r for r in rows.values() if r.status in PENDING]
                ):
                    if give_up:
                        row.status = RecipientStatus.FAILED.value
                        event(
                            EventType.FAILED,
                            row.address,
                            smtp_code=row.last_code,
                            detail=row.last_reply,
                        )
                    else:
                        row.status = RecipientStatus.DEFERRED.value
                        event(
                            EventType.DEFERRED,
                            row.address,
                            smtp_code=row.last_code,
                            detail=row.last_reply,
                        )
                if retry_at is not None:
                    message.due_at = retry_at
            still_pending = [r for r in rows.values() if r.status in PENDING]
            if attempt.throttled:
                pass
            elif still_pending:
                message.status = MessageStatus.DEFERRED.value
            else:
                message.status = final_status([r.status for r in rows.values()]).value
            message.lease_owner = None
            message.lease_expires_at = None
            if provider_id is not None:
                message.last_provider_id = provider_id
                if self._note_used(provider_id):
                    await session.execute(
                        update(Provider)
                        .where(Provider.id == provider_id)
                        # keep updated_at: it says when the settings last changed
                        .values(last_used_at=now, updated_at=Provider.updated_at)
                        .execution_options(synchronize_session=False)
                    )
            message.updated_at = now
            session.add_all(events)
            await self._note_circuits(session, attempt)
            await session.commit()

    def _note_used(self, provider_id: int) -> bool:
        """Whether to write ``last_used_at`` now: at most every few seconds per provider, so
        a busy provider's row is not rewritten for every message."""
        now = time.monotonic()
        if now - self._last_used_written.get(provider_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return False
        self._last_used_written[provider_id] = now
        return True

    async def _note_circuits(self, session: AsyncSession, attempt: _Attempt) -> None:
        """A tripped circuit shows on the provider as status ``error`` with the reason."""
        for provider_id, reason in attempt.opened:
            await session.execute(
                update(Provider)
                .where(Provider.id == provider_id, Provider.is_enabled)
                .values(
                    status=ProviderStatus.ERROR.value,
                    status_reason=stored_message(
                        N_("Paused after repeated failures; it will be tried again: {detail}"),
                        {"detail": reason[:500]},
                    ),
                )
            )
        for provider_id in attempt.closed:
            await session.execute(
                update(Provider)
                .where(Provider.id == provider_id, Provider.is_enabled)
                .values(status=ProviderStatus.ACTIVE.value, status_reason=None)
            )


def _version(provider: Provider) -> str:
    """What a pool's connections depend on: a change of any of these needs new connections.
    (``updated_at`` would not do: status changes bump it too.)"""
    digest = hashlib.sha256()
    for part in (
        provider.host,
        str(provider.port),
        provider.security,
        provider.username or "",
        provider.auth_method,
        str(provider.verify_tls),
    ):
        digest.update(part.encode() + b"\0")
    digest.update(provider.password_encrypted or b"")
    return digest.hexdigest()
