"""Provider quotas (``delivery.router.QuotaGate``): in this process's memory, and in Redis,
where several nodes count against one window."""

from __future__ import annotations

import asyncio
import secrets

from mailgate.delivery.router import QuotaGate, Route
from mailgate.domain import QuotaRange, QuotaWindow, Security, SmtpEndpoint
from redis_support import REDIS_URL, needs_redis


def route(provider_id: int, **caps: int) -> Route:
    return Route(
        provider_id=provider_id,
        name=f"provider {provider_id}",
        percentage=100,
        quotas={QuotaWindow(window): QuotaRange(cap, cap) for window, cap in caps.items()},
        endpoint=SmtpEndpoint("127.0.0.1", 25, Security.NONE),
        version="1",
    )


async def takes(gates: list[QuotaGate], target: Route, tries: int) -> list[bool]:
    """``tries`` takes at once, spread over the gates (the nodes)."""
    return list(
        await asyncio.gather(*(gates[i % len(gates)].try_take(target) for i in range(tries)))
    )


def test_a_provider_gets_no_more_than_its_smallest_window_allows() -> None:
    async def scenario() -> None:
        gate = QuotaGate()
        busy = route(1, per_second=50, per_minute=3)
        assert (await takes([gate], busy, 10)).count(True) == 3
        assert await gate.try_take(route(2, per_minute=1))  # counted per provider
        assert await gate.try_take(route(3))  # no quota: never held back

    asyncio.run(scenario())


@needs_redis
def test_nodes_racing_for_the_last_slots_in_redis_never_exceed_a_quota() -> None:
    """Takes from two nodes interleave between testing the windows and counting them: the
    losers of the per-minute window's last slot have already counted the per-second one.
    They are refused (nothing raised: a moving window's entry cannot be handed back, and
    trying to hand it back failed in Redis with WRONGTYPE) and the quota holds."""

    async def scenario() -> None:
        namespace = f"mailgate-test-quota-{secrets.token_hex(6)}"
        nodes = [QuotaGate(REDIS_URL, namespace=namespace) for _ in range(2)]
        busy = route(7, per_second=100, per_minute=2)
        try:
            taken = await takes(nodes, busy, 20)
            assert taken.count(True) == 2
            assert not await nodes[0].try_take(busy)
            assert not await nodes[1].try_take(busy)
        finally:
            await nodes[0].storage.reset()
            for node in nodes:
                await node.close()

    asyncio.run(scenario())
