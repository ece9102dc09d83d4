"""The delivery worker: claim -> load -> route -> send -> record, one small step each.

Any number of workers (in ``mailgate serve``, or ``mailgate worker`` processes on other
hosts) share the queue in the messages table. Mail accepted in the worker's own process
skips claim and load: it arrives leased, in memory (:meth:`Worker.adopt`); mail accepted by
another process on the same data directory arrives leased too, whole in a datagram
(:meth:`Worker.adopt_leased`). A message is sent with no database session open; outcomes
are recorded afterwards, many per transaction.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Final

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from mailgate.config import Settings
from mailgate.delivery.circuit import CircuitBreaker
from mailgate.delivery.coordination import Handed
from mailgate.delivery.outcomes import (
    Attempt,
    OutcomePlan,
    OutcomeWrites,
    plan,
    prepare_writes,
    write,
)
from mailgate.delivery.per_recipient import send_per_recipient
from mailgate.delivery.personalize import Personalizer, tracking_base
from mailgate.delivery.queue import DeliveryJob, Lease, claim_due, give_back, load_jobs
from mailgate.delivery.retry_policy import RetryPolicy
from mailgate.delivery.router import QuotaGate, Route, Router
from mailgate.delivery.smtp_pool import PoolLimits, RecipientResult, SendResult, SmtpPool
from mailgate.domain import Outcome, ProviderStatus
from mailgate.i18n import N_, stored_message
from mailgate.security.secrets_box import SecretBox
from mailgate.services.providers import endpoint_of, quotas_of
from mailgate.services.tracking_tokens import TrackingSigner
from mailgate.services.verp import Verp
from mailgate.single_flight import SingleFlight
from mailgate.store.db import Database
from mailgate.store.group_commit import GroupCommit
from mailgate.store.models import Message, Provider, utcnow

__all__ = ["Worker"]

log = structlog.get_logger(__name__)

ROUTES_TTL: Final = 2.0  # seconds a worker trusts its copy of an account's providers
LAST_USED_EVERY: Final = 5.0  # seconds between writes of a provider's last_used_at
LEASE_MARGIN: Final = timedelta(seconds=5)  # a handed-over job this close to its lease end
# is left to the next claim rather than started (it could be claimed by another meanwhile)
HANDED_BACKLOG: Final = 20  # times worker_concurrency: ids handed over beyond it are given back


_RoutesKey = tuple[int, int | None]  # (account id, the provider the message names)


@dataclass(frozen=True)
class _Record:
    """The writes of :meth:`Worker._record`, made ready before its transaction."""

    now: datetime
    plans: list[OutcomePlan]
    writes: OutcomeWrites | None  # None: made in the transaction (see prepare_writes)
    touched: tuple[int, ...]  # providers whose last_used_at is due to be written


@dataclass(frozen=True)
class _Tried:
    attempt: Attempt
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
        helper: bool = False,
    ) -> None:
        """``helper``: a worker beside the process that delivers (see
        :mod:`mailgate.delivery.coordination`): it sends only the mail its own process
        accepted, handed over in memory, never claims from the table, and gives back mail
        for providers with quotas, which only the delivering process counts."""
        self.helper = helper
        # Called when a helper gave mail back to the queue: the delivering process should
        # look now (set by the app to a WakeSender).
        self.nudge_deliverer: Callable[[], None] = lambda: None
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
        # With a bounce domain, each message goes out with its own return path, so an
        # asynchronous bounce finds its way back to it (services.bounce_intake).
        self.verp = (
            Verp(settings.secret_keys(), settings.bounce_domain) if settings.bounce_domain else None
        )
        self.signer = TrackingSigner(settings.secret_keys())
        self.limits = PoolLimits(
            max_connections=settings.pool_max_connections,
            max_messages_per_connection=settings.pool_max_messages_per_connection,
            idle_timeout=settings.pool_idle_seconds,
            timeout=settings.smtp_timeout,
        )
        self._pools: dict[int, tuple[str, SmtpPool]] = {}
        self._routes: dict[_RoutesKey, tuple[float, list[Route]]] = {}
        self._route_lookups: SingleFlight[_RoutesKey, list[Route]] = SingleFlight()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._last_used_written: dict[int, float] = {}
        self._handed: collections.deque[DeliveryJob] = collections.deque()
        # leased by another process for this one: (message id, lease end), loaded when taken
        self._handed_ids: collections.deque[tuple[int, datetime]] = collections.deque()
        self._look = True  # the table may hold mail for us: claim at the next turn
        self._claimed_at = -math.inf  # time.monotonic() of the last claim
        self._background: set[asyncio.Task[None]] = set()
        self._recorder: GroupCommit[tuple[DeliveryJob, _Tried], None] = GroupCommit(
            self._record, max_batch=settings.queue_batch_size
        )

    # --- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Mail was committed to the queue: look at it now rather than at the next poll."""
        self._look = True
        self._wake.set()

    def lease(self) -> Lease | None:
        """How much freshly accepted mail this worker takes over without a claim: enough to
        keep it busy, no more (the rest waits in the table for whichever worker is free)."""
        room = 2 * self.settings.worker_concurrency - len(self._handed) - len(self._in_flight)
        if room <= 0:
            return None
        return Lease(self.worker_id, self.settings.queue_lease_seconds, room)

    def adopt(self, jobs: Sequence[DeliveryJob]) -> Sequence[DeliveryJob]:
        """Take over mail committed already leased to this worker (see :meth:`lease`)."""
        self._handed.extend(jobs)
        self._wake.set()
        return ()

    def adopt_leased(self, handed: Handed) -> None:
        """Take over mail another process committed leased to ``handed.owner`` (see
        :class:`~mailgate.delivery.coordination.DelivererHandoff`): its jobs whole, and the
        messages named by id to read from the table. Mail leased to a worker this one
        replaced, or beyond what it can start before the lease ends, is given back to the
        queue at once rather than left waiting for the lease to run out."""
        backlog = HANDED_BACKLOG * self.settings.worker_concurrency
        ours = handed.owner == self.worker_id
        room = max(0, backlog - len(self._handed) - len(self._handed_ids)) if ours else 0
        jobs, message_ids = handed.jobs, handed.message_ids
        self._handed.extend(jobs[:room])
        refused = [job.message_id for job in jobs[room:]]
        room = max(0, room - len(jobs))
        self._handed_ids.extend((message_id, handed.until) for message_id in message_ids[:room])
        refused += message_ids[room:]
        if refused:
            self._in_background(self._release(handed.owner, refused))
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then let messages in flight finish."""
        concurrency = self.settings.worker_concurrency
        while not stop.is_set():
            room = concurrency - len(self._in_flight)
            if room <= 0:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            self._wake.clear()  # before looking: a wake during the claim is not lost
            try:
                jobs = await self._next_jobs(room)
            except Exception as exc:  # the database is away or overloaded: back off
                log.warning("taking mail from the queue failed", error=repr(exc)[:300])
                await asyncio.sleep(self.settings.queue_poll_seconds)
                continue
            for job in jobs:
                task = asyncio.create_task(self.deliver(job))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if not jobs:
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

    async def _next_jobs(self, room: int) -> list[DeliveryJob]:
        """Up to ``room`` jobs: mail handed over first; the queue when nudged (or when a
        claim came back full) and, whatever was handed, once per poll interval, so a steady
        stream of new mail never starves retries and scheduled mail."""
        jobs: list[DeliveryJob] = []
        overdue = time.monotonic() - self._claimed_at >= self.settings.queue_poll_seconds
        if not self.helper and (self._look or overdue):
            self._look = False
            jobs = await self.claim(min(room, self.settings.queue_batch_size))
        jobs += self._take_handed(room - len(jobs))
        if len(jobs) < room and self._handed_ids:
            jobs += await self._load_handed(room - len(jobs))
        return jobs

    def _take_handed(self, limit: int) -> list[DeliveryJob]:
        usable_until = utcnow() + LEASE_MARGIN
        jobs: list[DeliveryJob] = []
        while self._handed and len(jobs) < limit:
            job = self._handed.popleft()
            if job.lease_expires_at > usable_until:
                jobs.append(job)
        return jobs

    async def _load_handed(self, limit: int) -> list[DeliveryJob]:
        usable_until = utcnow() + LEASE_MARGIN
        message_ids: list[int] = []
        while self._handed_ids and len(message_ids) < limit:
            message_id, until = self._handed_ids.popleft()
            if until > usable_until:
                message_ids.append(message_id)
        return await self._load(message_ids)

    async def _load(self, message_ids: Sequence[int]) -> list[DeliveryJob]:
        """The jobs of messages leased to this worker, read outside any write transaction."""
        if not message_ids:
            return []
        return await self.database.read(
            partial(load_jobs, worker_id=self.worker_id, message_ids=message_ids)
        )

    async def _release(self, owner: str, message_ids: Sequence[int] | None = None) -> None:
        if await give_back(self.database, owner=owner, message_ids=message_ids):
            self.wake()

    def _in_background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run_until_idle(self, limit_seconds: float = 30.0) -> None:
        """Deliver everything due now, then return (tests, one-shot runs)."""
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline:
            jobs = self._take_handed(len(self._handed))
            jobs += await self._load_handed(len(self._handed_ids))
            if not jobs and not self.helper:
                jobs = await self.claim(self.settings.queue_batch_size)
            if not jobs:
                return
            await asyncio.gather(*(self.deliver(job) for job in jobs))
        raise TimeoutError("the queue did not drain in time")

    async def claim(self, limit: int) -> list[DeliveryJob]:
        """Lease due messages to this worker (one statement, its own transaction), then
        load them (outside it: the write lock is held for the lease alone)."""
        message_ids = await self.database.write(
            partial(
                claim_due,
                worker_id=self.worker_id,
                limit=limit,
                lease_seconds=self.settings.queue_lease_seconds,
                now=utcnow(),
            ),
            durable=False,  # lost in a power cut, the mail is simply claimed again
        )
        self._claimed_at = time.monotonic()
        if len(message_ids) == limit:
            self._look = True  # there may be more
        return await self._load(message_ids)

    async def close(self) -> None:
        """After :meth:`run`: give back the leases of mail handed over but not started (and
        of mail handed over since, by processes that had not heard this worker stop)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._release(self.worker_id)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for _, pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        await self.quotas.close()

    # --- one message ----------------------------------------------------------------------

    async def deliver(self, job: DeliveryJob) -> None:
        """Send one leased message and record the outcome. Errors leave it leased: it is
        claimed again when the lease runs out."""
        try:
            if utcnow() >= job.expires_at:
                tried = _Tried(Attempt(results=(), provider_id=None, expired=True))
            else:
                tried = await self._send(job)
            await self._recorder.submit((job, tried))
        except Exception:
            log.exception("delivery failed unexpectedly", message_id=job.message_id)

    async def _routes_for(self, job: DeliveryJob) -> list[Route]:
        key = (job.account_id, job.explicit_provider_id)
        cached = self._routes.get(key)
        if cached is not None and time.monotonic() - cached[0] < ROUTES_TTL:
            return cached[1]
        # every delivery in flight misses at once when the entry expires: one lookup for all
        return await self._route_lookups.run(key, partial(self._look_up_routes, key))

    async def _look_up_routes(self, key: _RoutesKey) -> list[Route]:
        account_id, explicit_provider_id = key
        async with self.database.reading() as session:
            query = select(Provider).where(
                Provider.account_id == account_id,
                Provider.is_enabled,
                Provider.driver == "smtp",
            )
            if explicit_provider_id is not None:
                query = query.where(Provider.id == explicit_provider_id)
            providers = list((await session.execute(query.order_by(Provider.id))).scalars())
        routes = [
            Route(
                provider_id=p.id,
                name=p.name,
                percentage=p.percentage,
                quotas=quotas_of(p),
                endpoint=endpoint_of(p, self.box),
                version=_version(p),
                tracking_domain=p.tracking_domain,
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

    async def _send(self, job: DeliveryJob) -> _Tried:
        """Route and send; on a provider-level failure fail over to the next provider."""
        routes = await self._routes_for(job)
        if not routes:
            reason = (
                "no enabled provider"
                if job.explicit_provider_id is None
                else ("the chosen provider is disabled or deleted")
            )
            return _Tried(Attempt(self._all(job, Outcome.SOFT, reason), provider_id=None))
        if self.helper and any(_has_quotas(route) for route in routes):
            return _Tried(Attempt((), provider_id=None, given_back=True))
        tried: set[int] = set()
        opened: list[tuple[int, str]] = []
        closed: list[int] = []
        last: Attempt | None = None
        while True:
            route = await self.router.choose(
                routes, exclude=frozenset(tried), explicit=job.explicit_provider_id is not None
            )
            if route is None:
                if last is not None:
                    return _Tried(last, tuple(opened), tuple(closed))
                results = self._all(job, Outcome.SOFT, "every provider is busy or resting")
                return _Tried(Attempt(results, provider_id=None, throttled=True))
            result = await self._transmit(route, job)
            if result.unsent:  # the provider failed before anything was sent: fail over
                tried.add(route.provider_id)
                if self.circuits.failed(route.provider_id):
                    opened.append((route.provider_id, result.results[0].reply))
                last = Attempt(result.results, route.provider_id)
                continue
            if self.circuits.succeeded(route.provider_id):
                closed.append(route.provider_id)
            return _Tried(Attempt(result.results, route.provider_id), tuple(opened), tuple(closed))

    async def _transmit(self, route: Route, job: DeliveryJob) -> SendResult:
        """One transaction for all recipients; a copy each when the message is tracked or
        carries List-Unsubscribe (their links name the recipient)."""
        if not job.engagement.per_recipient:
            return await self._pool(route).send(
                mail_from=self._return_path(job),
                recipients=job.recipients,
                data=job.raw,
                smtputf8=job.smtputf8,
            )
        copies = Personalizer(
            job.raw,
            engagement=job.engagement,
            signer=self.signer,
            base=tracking_base(self.settings.effective_public_url, route.tracking_domain),
            message_id=job.message_id,
        )
        return await send_per_recipient(
            self._pool(route),
            mail_from=self._return_path(job),
            recipients=job.recipients,
            smtputf8=job.smtputf8,
            copy_for=copies.copy_for,
        )

    def _return_path(self, job: DeliveryJob) -> str:
        return self.verp.return_path(job.message_id) if self.verp else job.envelope_from

    @staticmethod
    def _all(job: DeliveryJob, outcome: Outcome, reply: str) -> tuple[RecipientResult, ...]:
        return tuple(RecipientResult(r, outcome, None, reply) for r in job.recipients)

    # --- recording ------------------------------------------------------------------------

    async def _record(self, items: Sequence[tuple[DeliveryJob, _Tried]]) -> list[None]:
        """Record the outcomes of many attempts in one transaction (group commit)."""
        now = utcnow()
        plans = [plan(job, t.attempt, now=now, retry=self.retry) for job, t in items]
        used = {t.attempt.provider_id for _, t in items} - {None}
        record = _Record(  # made here: the write lock is held for the writes alone
            now=now,
            plans=plans,
            writes=prepare_writes(self.database.dialect, plans),
            touched=tuple(sorted(p for p in used if p is not None and self._note_used(p))),
        )
        # Not waited onto the disk: lost in a power cut, an attempt is made again (the message
        # may arrive twice, as after any crash mid-delivery: at least once, never lost).
        # Accepted mail itself is always synced.
        kept = await self.database.write(
            partial(self._write_outcomes, items, record), durable=False
        )
        if any(t.attempt.given_back for _, t in kept):
            self.nudge_deliverer()
        return [None] * len(items)

    def _write_outcomes(
        self,
        items: Sequence[tuple[DeliveryJob, _Tried]],
        record: _Record,
        session: Session,
    ) -> list[tuple[DeliveryJob, _Tried]]:
        """The transaction of :meth:`_record`; the attempts it recorded."""
        ours = _OURS_LOCKED if session.get_bind().dialect.name == "postgresql" else _OURS
        ids = [job.message_id for job, _ in items]
        still_ours = set(session.execute(ours, {"ids": ids, "owner": self.worker_id}).scalars())
        # a job whose lease ran out (and someone else may hold now) is left alone
        kept = [i for i, (job, _) in enumerate(items) if job.message_id in still_ours]
        if len(kept) == len(items):
            write(session, record.plans, now=record.now, prepared=record.writes)
        else:  # the rows made ready are not all ours to write
            write(session, [record.plans[i] for i in kept], now=record.now)
        for provider_id in record.touched:
            session.execute(
                update(Provider)
                .where(Provider.id == provider_id)
                # keep updated_at: it says when the settings last changed
                .values(last_used_at=record.now, updated_at=Provider.updated_at)
                .execution_options(synchronize_session=False)
            )
        for i in kept:
            _note_circuits(session, items[i][1])
        return [items[i] for i in kept]

    def _note_used(self, provider_id: int) -> bool:
        """Whether to write ``last_used_at`` now: at most every few seconds per provider, so
        a busy provider's row is not rewritten for every message."""
        now = time.monotonic()
        if now - self._last_used_written.get(provider_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return False
        self._last_used_written[provider_id] = now
        return True


# The messages among "ids" still leased to "owner". Built once: it runs for every outcome batch.
_OURS: Final = select(Message.id).where(
    Message.id.in_(bindparam("ids", expanding=True)), Message.lease_owner == bindparam("owner")
)
_OURS_LOCKED: Final = _OURS.with_for_update()


def _note_circuits(session: Session, tried: _Tried) -> None:
    """A tripped circuit shows on the provider as status ``error`` with the reason."""
    for provider_id, reason in tried.opened:
        session.execute(
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
    for provider_id in tried.closed:
        session.execute(
            update(Provider)
            .where(Provider.id == provider_id, Provider.is_enabled)
            .values(status=ProviderStatus.ACTIVE.value, status_reason=None)
        )


def _has_quotas(route: Route) -> bool:
    return any(q is not None and q.max > 0 for q in route.quotas.values())


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
