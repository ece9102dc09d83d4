"""The Redis on this machine, for the tests that share state through it (they skip, saying
why, where it is not reachable)."""

from __future__ import annotations

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:  # unreachable for any reason: the test says why it skips
        return False
    return True


needs_redis = pytest.mark.skipif(
    not _reachable(), reason="Redis at 127.0.0.1:6379 is not reachable"
)
