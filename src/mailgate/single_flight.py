"""Concurrent lookups of one key share one run.

A cache entry that expires under load is missed by every request or delivery in flight at
once; without this each would open its own database session, and on SQLite they queue for
the one connection (and its lock) behind the writers. Failures are shared too, and never
kept: the next call after a failure looks up again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        """``lookup()``'s result, from the run already under way for ``key`` if there is one.
        A caller that is cancelled leaves the run going for the others."""
        pending = self._running.get(key)
        if pending is None:
            pending = asyncio.ensure_future(lookup())
            self._running[key] = pending
            pending.add_done_callback(partial(self._finished, key))
        return await asyncio.shield(pending)

    def _finished(self, key: K, run: asyncio.Future[V]) -> None:
        self._running.pop(key, None)
        if not run.cancelled():
            run.exception()  # retrieved, for the case where every caller has gone
