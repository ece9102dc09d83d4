"""Accounts and their API keys."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.domain import Permission
from mailgate.errors import Invalid, NotFound, Unauthenticated
from mailgate.i18n import N_
from mailgate.security.api_keys import generate_key, hash_key, key_prefix, keys_match
from mailgate.single_flight import SingleFlight
from mailgate.store.db import Database
from mailgate.store.models import Account, ApiKey, utcnow
from mailgate.validation import check_email, check_no_control_chars

__all__ = [
    "Principal",
    "PrincipalCache",
    "authenticate",
    "bootstrap_root",
    "create_account",
    "create_key",
    "list_keys",
    "revoke_key",
    "root_account",
]

ALL_PERMISSIONS: tuple[str, ...] = tuple(p.value for p in Permission)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account and the key's permissions."""

    account_id: int
    account_email: str
    key_id: int
    key_prefix: str
    permissions: frozenset[str]


async def root_account(*, session: AsyncSession) -> Account | None:
    query = select(Account).where(Account.is_root).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def create_account(
    *, session: AsyncSession, name: str, email: str, root: bool = False
) -> Account:
    try:
        email = check_email(email)
        name = check_no_control_chars(name)
    except ValueError as exc:
        raise Invalid.field("email", str(exc)) from exc
    account = Account(name=name, email=email, is_root=root)
    session.add(account)
    await session.commit()
    return account


async def bootstrap_root(*, session: AsyncSession, email: str) -> tuple[Account, str | None]:
    """Create the root account and its first key on an empty database.

    Returns the plaintext key only when it was just created (it is never stored).
    """
    account = await root_account(session=session)
    if account is not None:
        return account, None
    account = await create_account(session=session, name="root", email=email, root=True)
    _, plaintext = await create_key(session=session, account_id=account.id, name="root")
    return account, plaintext


def _check_permissions(permissions: Iterable[str] | None) -> list[str]:
    if permissions is None:
        return list(ALL_PERMISSIONS)
    chosen = list(dict.fromkeys(permissions))
    unknown = [p for p in chosen if p not in ALL_PERMISSIONS]
    if unknown:
        raise Invalid.field(
            "permissions", N_("Unknown permission {value}."), value=", ".join(unknown)
        )
    return chosen


async def create_key(
    *,
    session: AsyncSession,
    account_id: int,
    name: str,
    permissions: Iterable[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key with the given permissions (all when None). Returns it and its plaintext."""
    chosen = _check_permissions(permissions)
    generated = generate_key()
    key = ApiKey(
        account_id=account_id,
        name=name,
        prefix=generated.prefix,
        key_hash=generated.digest,
        permissions=chosen,
    )
    session.add(key)
    await session.commit()
    return key, generated.plaintext


async def list_keys(*, session: AsyncSession, account_id: int | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    return list((await session.execute(query)).scalars())


async def revoke_key(*, session: AsyncSession, prefix: str) -> ApiKey:
    key = (
        await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(N_("No API key with prefix {prefix}."), prefix=prefix[:40])
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.commit()
    return key


async def authenticate(*, session: AsyncSession, presented: str | None) -> Principal:
    """The principal behind a presented key; Unauthenticated when missing, unknown or revoked."""
    if not presented:
        raise Unauthenticated(N_("A valid API key is required."))
    prefix = key_prefix(presented.strip())
    if prefix is None:
        raise Unauthenticated(N_("The API key is not valid."))
    query = (
        select(ApiKey, Account)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.prefix == prefix)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None or not keys_match(presented.strip(), row[0].key_hash) or row[0].revoked_at:
        raise Unauthenticated(N_("The API key is not valid."))
    key, account = row
    return Principal(
        account_id=account.id,
        account_email=account.email,
        key_id=key.id,
        key_prefix=key.prefix,
        permissions=frozenset(key.permissions),
    )


class PrincipalCache:
    """Keys verified in the last ``ttl`` seconds, so a client sending mail at full speed costs
    one key lookup every few seconds instead of one per request. A key revoked (or whose
    permissions changed) in the database takes effect within ``ttl``; failures are never
    cached. Entries are keyed by the key's SHA-256: the cache holds no usable secret."""

    def __init__(self, database: Database, ttl: float, max_entries: int = 10_000) -> None:
        self.database = database
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        # one lookup per key at a time (see mailgate.single_flight)
        self._lookups: SingleFlight[bytes, Principal] = SingleFlight()

    async def authenticate(self, presented: str | None) -> Principal:
        digest = hash_key(presented.strip()) if presented else b""
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return await self._lookups.run(digest, partial(self._look_up, digest, presented))

    async def _look_up(self, digest: bytes, presented: str | None) -> Principal:
        async with self.database.reading() as session:
            principal = await authenticate(session=session, presented=presented)
        now = time.monotonic()
        if self.ttl <= 0:
            return principal
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[digest] = (now + self.ttl, principal)
        return principal
