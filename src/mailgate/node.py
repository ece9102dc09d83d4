"""One gateway process: its database, its delivery and, when asked, its SMTP relay.

``mailgate serve`` runs the API on top of a node (its lifespan enters :func:`running_node`);
``mailgate smtpd`` runs a node with the relay and no API. Either way, mail accepted here is
committed by the node's :class:`~mailgate.services.messages.AcceptBatcher` and delivered by
its worker (see :mod:`mailgate.delivery.coordination` for how processes share delivery).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from mailgate.config import Settings
from mailgate.delivery.coordination import (
    DelivererHandoff,
    DeliveryLock,
    WakeListener,
    WakeSender,
)
from mailgate.delivery.worker import Worker
from mailgate.runtime import settle_garbage_collector
from mailgate.security.rate_limit import KeyRateLimiter
from mailgate.security.secrets_box import SecretBox
from mailgate.services.messages import AcceptBatcher
from mailgate.services.retention import RetentionPurger
from mailgate.services.stats_rollup import run_rollups
from mailgate.smtpd.server import start_relay
from mailgate.store.db import Database, migrate
from mailgate.webhooks.dispatcher import Dispatcher

__all__ = ["Node", "running_node", "start_upkeep"]


@dataclass
class Node:
    settings: Settings
    database: Database
    box: SecretBox
    accepter: AcceptBatcher
    rate_limiter: KeyRateLimiter  # per API key; its storage also counts SMTP users' sending


@asynccontextmanager
async def running_node(
    settings: Settings,
    *,
    run_migrations: bool = True,
    relay: bool = False,
    settle_gc: bool = False,
) -> AsyncIterator[Node]:
    """Start a node, yield it, and stop everything it started. ``relay``: listen for SMTP
    too (when ``smtp_port`` is set). ``settle_gc``: a long-running server process (not for
    tests, which start many nodes in one process)."""
    url = settings.effective_database_url
    if run_migrations:
        await asyncio.to_thread(migrate, url)
    async with AsyncExitStack() as stack:
        database = Database(url)
        stack.push_async_callback(database.dispose)
        rate_limiter = KeyRateLimiter(settings.api_rate_limit, settings.redis_url)
        stack.push_async_callback(rate_limiter.close)
        box = SecretBox(settings.secret_keys())
        # Of the processes sharing a data directory, the one holding the delivery lock claims
        # from the queue; every process delivers the mail it accepted itself, handed over in
        # memory already leased (see delivery.coordination).
        lock = DeliveryLock(settings.data_dir)
        delivers = settings.run_workers and await asyncio.to_thread(lock.acquire)
        stack.callback(lock.release)
        worker = (
            Worker(database, box, settings, helper=not delivers) if settings.run_workers else None
        )
        if delivers:
            assert worker is not None
            lock.announce(worker.worker_id)
        node = Node(
            settings=settings,
            database=database,
            box=box,
            accepter=AcceptBatcher(database, settings),
            rate_limiter=rate_limiter,
        )
        await _wire_delivery(stack, node, worker, delivers)
        if delivers:
            start_upkeep(stack, database, box, settings, purge=True)
        if relay and settings.smtp_port:
            listener = await start_relay(node)
            stack.push_async_callback(listener.close)
        if settle_gc:
            settle_garbage_collector()
        yield node


def start_upkeep(
    stack: AsyncExitStack,
    database: Database,
    box: SecretBox,
    settings: Settings,
    *,
    purge: bool,
) -> None:
    """The background work of a delivering process, stopped when ``stack`` closes: webhooks
    go out (several processes share the outbox with leases), events roll up into hourly stats
    (passes take turns on a row lock) and, when ``purge`` (the process holding the delivery
    lock), the bodies of mail past its retention are purged. Accepting processes do none of
    it, so their CPU and the SQLite write lock stay with incoming mail."""
    stop = asyncio.Event()
    jobs = [
        asyncio.create_task(
            Dispatcher(database, box, settings).run(stop), name="webhook-dispatcher"
        )
    ]
    if settings.stats_rollup_seconds:
        jobs.append(
            asyncio.create_task(
                run_rollups(database, every=settings.stats_rollup_seconds, stop=stop),
                name="stats-rollup",
            )
        )
    if purge:
        jobs.append(
            asyncio.create_task(
                RetentionPurger(database, settings).run(stop), name="retention-purger"
            )
        )

    async def finish() -> None:
        stop.set()
        await asyncio.gather(*jobs)

    stack.push_async_callback(finish)


async def _wire_delivery(
    stack: AsyncExitStack, node: Node, worker: Worker | None, delivers: bool
) -> None:
    """Who takes the mail committed here and who hears of it, and the worker's loop, if this
    node has one (see :mod:`mailgate.delivery.coordination`)."""
    settings = node.settings
    listener = None
    if delivers:
        assert worker is not None
        node.accepter.handoff = worker
        node.accepter.wake = worker.wake
        listener = WakeListener(settings.data_dir, worker)
        await listener.start()
    else:  # the delivering process (another `serve` one, or a `mailgate worker`) hears of it
        sender = WakeSender(settings.data_dir)
        stack.callback(sender.close)
        node.accepter.wake = sender
        if worker is not None:  # a helper: takes this process's mail; what it gives back
            node.accepter.handoff = worker  # is for the deliverer
            worker.nudge_deliverer = sender
        else:
            node.accepter.handoff = DelivererHandoff(
                settings.data_dir,
                sender,
                seconds=settings.queue_lease_seconds,
                limit=2 * settings.worker_concurrency,
            )
    if worker is None:
        return
    stop = asyncio.Event()
    delivering = asyncio.create_task(worker.run(stop), name="delivery-worker")

    async def finish() -> None:
        stop.set()
        await delivering
        if listener is not None:  # no more handoffs: then the worker gives back what it
            listener.close()  # was handed and did not start
        await worker.close()

    stack.push_async_callback(finish)
