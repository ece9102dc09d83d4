"""Per-key rate limits: a real server with a small limit, and the shared Redis storage."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from conftest import make_settings, new_tenant, serve
from mailgate.errors import RateLimited
from mailgate.security.rate_limit import KeyRateLimiter
from redis_support import REDIS_URL, needs_redis


def test_a_key_over_its_limit_gets_429_with_retry_after(
    tmp_path: Path, tls_ca_bundle: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
    settings = make_settings(url, tmp_path, tls_ca_bundle, api_rate_limit="3/minute")
    with serve(settings) as server, new_tenant(server) as tenant:
        answers = [tenant.client.get("/api/v1/providers") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)

        limited = tenant.client.get("/api/v1/providers")
        assert limited.status_code == 429
        retry_after = int(limited.headers["retry-after"])
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert limited.headers["x-ratelimit-limit"] == "3"
        assert 1 <= retry_after <= 60
        body = limited.json()
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["retryable"] is True
        assert body["error"]["retry_after"] == retry_after

        # Each surface answers the same 429 in its own shape.
        mailsage = tenant.client.get("/api/v1/smtp/configs")
        assert mailsage.status_code == 429
        assert mailsage.json()["code"] == "rate_limit"
        assert mailsage.json()["retry_after"] >= 1

        # The limit is per key: another key of the same account is not affected.
        other_key = tenant.key_with("providers:read")
        with httpx.Client(base_url=server.base_url) as other:
            fresh = other.get("/api/v1/providers", headers={"X-API-Key": other_key})
            assert fresh.status_code == 200


@needs_redis
def test_two_nodes_share_limits_through_redis() -> None:
    async def scenario() -> None:
        namespace = f"mailgate-test-{secrets.token_hex(6)}"
        node_a = KeyRateLimiter("4/minute", REDIS_URL, namespace=namespace)
        node_b = KeyRateLimiter("4/minute", REDIS_URL, namespace=namespace)
        try:
            await node_a.hit("api-key", "mg_shared")
            await node_b.hit("api-key", "mg_shared")
            await node_a.hit("api-key", "mg_shared")
            state = await node_b.hit("api-key", "mg_shared")
            assert state.remaining == 0
            with pytest.raises(RateLimited) as caught:
                await node_a.hit("api-key", "mg_shared")
            assert caught.value.retry_after >= 1
            await node_a.hit("api-key", "mg_other")  # other keys are counted apart
        finally:
            await node_a.storage.reset()
            await node_a.close()
            await node_b.close()

    asyncio.run(scenario())
