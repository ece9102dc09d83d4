"""The webhook dispatcher: fan out new events, claim due deliveries, POST them, record.

It runs where delivery runs (the process holding the delivery lock, and each
``mailgate worker``); several may share one PostgreSQL database. Each POST is its own task
that records its own outcome, so a slow receiver holds up nobody else's deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from datetime import timedelta
from functools import partial
from typing import Final

import httpx
import structlog

from mailgate.config import Settings
from mailgate.security.secrets_box import SecretBox
from mailgate.store.db import Database
from mailgate.store.models import utcnow
from mailgate.webhooks import fanout, outbox, sender
from mailgate.webhooks.outbox import Attempted, DisablePolicy, OutboxJob

__all__ = ["Dispatcher"]

log = structlog.get_logger(__name__)

FANOUT_BATCH: Final = 500
LEASE_MARGIN: Final = 30.0  # seconds a lease outlives the POST's own timeout


class Dispatcher:
    def __init__(
        self, database: Database, box: SecretBox, settings: Settings, *, owner: str | None = None
    ) -> None:
        self.database = database
        self.box = box
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.disable = DisablePolicy(
            after=timedelta(hours=settings.webhook_disable_after_hours),
            failures=settings.webhook_disable_after_failures,
        )
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set; then let POSTs in flight finish."""
        async with sender.new_client(self.settings.webhook_timeout_seconds) as client:
            while not stop.is_set():
                try:
                    busy = await self.step(client)
                except Exception as exc:  # the database is away: back off, try again
                    log.warning("webhook dispatch failed", error=repr(exc)[:300])
                    busy = False
                if not busy:
                    await self._idle(stop)
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def step(self, client: httpx.AsyncClient) -> bool:
        """One fan-out pass and one claim; True when there may be more to do at once."""
        settings = self.settings
        read = await self.database.write(
            partial(
                fanout.fan_out,
                now=utcnow(),
                batch=FANOUT_BATCH,
                gap_hold=timedelta(seconds=settings.webhook_gap_hold_seconds),
                retry_for=timedelta(hours=settings.webhook_retry_hours),
            )
        )
        room = settings.webhook_concurrency - len(self._in_flight)
        jobs: list[OutboxJob] = []
        if room > 0:
            jobs = await self.database.write(
                partial(
                    outbox.claim,
                    owner=self.owner,
                    limit=room,
                    lease_seconds=settings.webhook_timeout_seconds + LEASE_MARGIN,
                    now=utcnow(),
                ),
                durable=False,  # lost in a power cut, the deliveries are claimed again
            )
        for job in jobs:
            task = asyncio.create_task(self._deliver(client, job))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return read >= FANOUT_BATCH or (room > 0 and len(jobs) == room)

    async def _idle(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_seconds)

    def _secrets(self, job: OutboxJob) -> list[str]:
        valid = [self.box.decrypt(job.secret_encrypted)]
        expires = job.previous_secret_expires_at
        if job.previous_secret_encrypted is not None and expires is not None and expires > utcnow():
            valid.append(self.box.decrypt(job.previous_secret_encrypted))
        return valid

    async def _deliver(self, client: httpx.AsyncClient, job: OutboxJob) -> None:
        try:
            result = await sender.post(
                client,
                url=job.url,
                message_id=job.public_id,
                payload=job.payload,
                secrets=self._secrets(job),
                allow_private=self.settings.webhook_allow_private,
                timeout_seconds=self.settings.webhook_timeout_seconds,
            )
            attempted = Attempted(job, result.status_code, result.error, result.duration_ms)
            disabled = await self.database.write(
                partial(
                    outbox.record,
                    attempted=attempted,
                    owner=self.owner,
                    now=utcnow(),
                    schedule=self.settings.webhook_retry_schedule,
                    disable=self.disable,
                ),
                durable=False,  # lost in a power cut, the POST is made again (at least once)
            )
            if disabled:
                log.warning("webhook disabled after repeated failures", webhook_id=job.webhook_id)
        except Exception:  # left leased: claimed again when the lease runs out
            log.exception("webhook delivery failed unexpectedly", delivery=job.public_id)
