"""Choosing the provider for a message: explicit, else weighted by ``percentage`` among the
enabled providers whose circuit is closed and whose quotas have room.

Quotas are moving windows in ``limits`` storage: in memory on one node, in Redis when
``MAILGATE_REDIS_URL`` is set so several nodes share them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mailgate.delivery.circuit import CircuitBreaker
from mailgate.domain import QuotaRange, QuotaWindow, SmtpEndpoint

__all__ = ["QuotaGate", "Route", "Router"]

_ITEMS: dict[QuotaWindow, type[RateLimitItem]] = {
    QuotaWindow.PER_SECOND: RateLimitItemPerSecond,
    QuotaWindow.PER_MINUTE: RateLimitItemPerMinute,
    QuotaWindow.PER_HOUR: RateLimitItemPerHour,
    QuotaWindow.PER_DAY: RateLimitItemPerDay,
}


@dataclass(frozen=True)
class Route:
    """What the worker needs of a provider to send through it (a snapshot, not a DB row)."""

    provider_id: int
    name: str
    percentage: int
    quotas: dict[QuotaWindow, QuotaRange | None]
    endpoint: SmtpEndpoint
    version: str  # changes when the provider's settings change: a new pool is needed
    tracking_domain: str | None = None  # host of its tracking/unsubscribe links, if its own


class QuotaGate:
    """Counts messages per provider per window; a provider at its cap is passed over."""

    def __init__(self, redis_url: str | None = None, namespace: str = "mailgate-quota") -> None:
        if redis_url:
            found = storage_from_string(
                f"async+{redis_url}", implementation="redispy", key_prefix=namespace
            )
            self.storage = cast(Storage, found)
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)

    def _items(self, route: Route) -> list[RateLimitItem]:
        return [
            _ITEMS[window](quota.max)
            for window, quota in route.quotas.items()
            if quota is not None and quota.max > 0
        ]

    async def try_take(self, route: Route) -> bool:
        """Count one message against every window of ``route``; False when any window is
        full. Every window is tested first, so nothing is counted for a provider at its cap.
        Another node may take a window's last slot in between: the windows already counted
        then keep their entries until those expire (a moving window cannot hand one back),
        which keeps the provider under its quota for a while, never over it."""
        items = self._items(route)
        key = str(route.provider_id)
        for item in items:
            if not await self._limiter.test(item, "provider", key):
                return False
        for item in items:
            if not await self._limiter.hit(item, "provider", key):
                return False
        return True

    async def close(self) -> None:
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


class Router:
    def __init__(
        self, quotas: QuotaGate, circuits: CircuitBreaker, rng: random.Random | None = None
    ) -> None:
        self.quotas = quotas
        self.circuits = circuits
        self.rng = rng or random.Random()

    def _weighted_order(self, routes: Sequence[Route]) -> list[Route]:
        # Efraimidis-Spirakis: sort by u^(1/w); the first is a draw weighted by percentage.
        keyed = [(self.rng.random() ** (1.0 / r.percentage), r) for r in routes if r.percentage > 0]
        return [route for _, route in sorted(keyed, key=lambda pair: pair[0], reverse=True)]

    async def choose(
        self,
        routes: Sequence[Route],
        *,
        exclude: frozenset[int] = frozenset(),
        explicit: bool = False,
    ) -> Route | None:
        """The provider for the next try, with one quota unit taken; None when none can take it.

        ``explicit``: the caller named the provider, so its weight does not matter.
        """
        candidates = [r for r in routes if r.provider_id not in exclude]
        ordered = candidates if explicit else self._weighted_order(candidates)
        for route in ordered:
            if not self.circuits.allows(route.provider_id):
                continue
            if await self.quotas.try_take(route):
                return route
            self.circuits.release_probe(route.provider_id)
        return None
