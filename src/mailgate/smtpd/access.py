"""Who may relay: SMTP logins and listed networks, each trusted for a short while.

An argon2 check costs about 0.2 s of CPU, and many applications open a connection (and log
in) for every message, so a successful login is remembered for ``smtp_auth_cache_seconds``
under a keyed digest of the password (the password itself is never kept). Failed logins are
not remembered, and cost each address a slot in a per-minute budget, so guessing is slow.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from typing import Final, Generic, TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond

from mailgate.security.rate_limit import KeyRateLimiter
from mailgate.services.ip_auth import account_for_ip
from mailgate.services.smtp_users import SmtpPrincipal, authenticate_smtp_user
from mailgate.store.db import Database

__all__ = ["FAILED_LOGINS_PER_MINUTE", "RelayAccess"]

FAILED_LOGINS_PER_MINUTE: Final = 10  # per client address
CACHE_ENTRIES: Final = 10_000

K = TypeVar("K")
V = TypeVar("V")


class _Expiring(Generic[K, V]):
    """A small LRU map whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, size: int = CACHE_ENTRIES) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return False, None
        self._items.move_to_end(key)
        return True, found[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class RelayAccess:
    def __init__(self, database: Database, limiter: KeyRateLimiter, ttl: float) -> None:
        self.database = database
        self.limiter = limiter
        self._pepper = secrets.token_bytes(32)  # this process's own: digests mean nothing elsewhere
        self._logins: _Expiring[tuple[str, bytes], SmtpPrincipal] = _Expiring(ttl)
        self._networks: _Expiring[str, int | None] = _Expiring(ttl)
        self._failures: RateLimitItem = RateLimitItemPerMinute(FAILED_LOGINS_PER_MINUTE)

    async def may_try_login(self, ip: str) -> bool:
        """False once ``ip`` has used up its failed logins for the current minute."""
        return await self.limiter.remaining(self._failures, "smtp-auth-failed", ip) > 0

    async def login(self, ip: str, username: str, password: str) -> SmtpPrincipal | None:
        digest = hmac.new(self._pepper, password.encode(), hashlib.sha256).digest()
        cached, principal = self._logins.get((username, digest))
        if cached:
            return principal
        async with self.database.session() as session:
            principal = await authenticate_smtp_user(
                session=session, username=username, password=password
            )
        if principal is None:
            await self.limiter.allow(self._failures, "smtp-auth-failed", ip)
            return None
        self._logins.put((username, digest), principal)
        return principal

    async def network_account(self, ip: str) -> int | None:
        """The account that listed a network holding ``ip``, if one did."""
        cached, account_id = self._networks.get(ip)
        if cached:
            return account_id
        async with self.database.reading() as session:
            account_id = await account_for_ip(session=session, ip=ip)
        self._networks.put(ip, account_id)
        return account_id

    async def may_send(self, principal: SmtpPrincipal) -> bool:
        """Count one message against the user's own rate limit, if it has one."""
        limit = principal.rate_limit
        if limit is None:
            return True
        item = RateLimitItemPerSecond(limit.max_messages, limit.period_seconds)
        return await self.limiter.allow(item, "smtp-user", str(principal.user_id))
