"""SMTP users as the relay listener sees them: argon2 hashes at rest, authentication (right,
wrong, unknown, disabled), rehashing, sender rules, and one user name per deployment."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from mailgate.domain import SendingRateLimit
from mailgate.errors import Conflict, Invalid, NotFound
from mailgate.services import accounts
from mailgate.services import smtp_users as service
from mailgate.services.smtp_users import SmtpPrincipal, SmtpUserChanges, sender_allowed
from mailgate.store.db import Database
from mailgate.store.models import SmtpUser

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    database: Database
    account_id: int
    other_account_id: int


@pytest.fixture
async def world(fresh_database_url: str) -> AsyncIterator[World]:
    database = Database(fresh_database_url)
    try:
        async with database.session() as session:
            one = await accounts.create_account(session=session, name="a", email="a@example.com")
            two = await accounts.create_account(session=session, name="b", email="b@example.com")
        yield World(database, one.id, two.id)
    finally:
        await database.dispose()


async def create(world: World, account_id: int | None = None, **values: object) -> SmtpUser:
    values.setdefault("username", "app-" + secrets.token_hex(4))
    values.setdefault("password", PASSWORD)
    async with world.database.session() as session:
        saved = await service.create_smtp_user(
            session=session,
            account_id=account_id or world.account_id,
            changes=SmtpUserChanges(**values),
        )
    return saved.user


async def login(world: World, username: str, password: str) -> SmtpPrincipal | None:
    async with world.database.session() as session:
        return await service.authenticate_smtp_user(
            session=session, username=username, password=password
        )


async def stored(world: World, username: str) -> SmtpUser:
    async with world.database.session() as session:
        query = select(SmtpUser).where(SmtpUser.username == username)
        return (await session.execute(query)).scalar_one()


async def test_only_an_argon2_hash_is_stored(world: World) -> None:
    user = await create(world, username="hash-check")

    row = await stored(world, "hash-check")
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert PasswordHasher().verify(row.password_hash, PASSWORD)
    assert user.public_id.startswith("smtpu_")


async def test_the_right_password_logs_in_as_the_users_account(world: World) -> None:
    limit = SendingRateLimit(max_messages=100, period_seconds=3600)
    await create(world, username="right-one", allowed_senders=["app@example.com"], rate_limit=limit)

    principal = await login(world, "right-one", PASSWORD)

    assert principal is not None
    assert principal.account_id == world.account_id
    assert principal.username == "right-one"
    assert principal.allowed_senders == ("app@example.com",)
    assert principal.rate_limit == limit
    assert (await stored(world, "right-one")).last_used_at is not None


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("wrong-pw", "not the password at all"),
        ("wrong-pw", PASSWORD.upper()),
        ("wrong-pw", ""),
        ("no-such-user", PASSWORD),
        ("WRONG-PW", PASSWORD),  # user names are exact
        ("", PASSWORD),
        ("wrong-pw", PASSWORD + "x" * 2000),
    ],
)
async def test_wrong_or_unknown_credentials_are_refused(
    world: World, username: str, password: str
) -> None:
    await create(world, username="wrong-pw")

    assert await login(world, username, password) is None


async def test_a_disabled_user_is_refused_even_with_the_right_password(world: World) -> None:
    user = await create(world, username="disabled", is_enabled=False)
    assert await login(world, "disabled", PASSWORD) is None

    async with world.database.session() as session:
        row = await service.get_smtp_user(
            session=session, account_id=world.account_id, ref=user.public_id
        )
        await service.update_smtp_user(
            session=session, user=row, changes=SmtpUserChanges(is_enabled=True)
        )
    assert await login(world, "disabled", PASSWORD) is not None


async def test_a_hash_with_old_parameters_is_replaced_on_login(world: World) -> None:
    await create(world, username="old-hash")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with world.database.session() as session:
        query = update(SmtpUser).where(SmtpUser.username == "old-hash")
        await session.execute(query.values(password_hash=weak))
        await session.commit()
    before = (await stored(world, "old-hash")).updated_at

    assert await login(world, "old-hash", PASSWORD) is not None

    row = await stored(world, "old-hash")
    assert row.password_hash != weak
    assert not PasswordHasher().check_needs_rehash(row.password_hash)
    assert row.updated_at == before  # a login is not a change
    assert await login(world, "old-hash", PASSWORD) is not None


async def test_a_generated_password_is_returned_once_and_works(world: World) -> None:
    async with world.database.session() as session:
        saved = await service.create_smtp_user(
            session=session,
            account_id=world.account_id,
            changes=SmtpUserChanges(username="generated"),
        )
    assert saved.generated_password and len(saved.generated_password) >= 32
    assert saved.generated_password not in repr(saved)
    assert await login(world, "generated", saved.generated_password) is not None

    async with world.database.session() as session:
        row = await service.get_smtp_user(
            session=session, account_id=world.account_id, ref=saved.user.public_id
        )
        rotated = await service.update_smtp_user(
            session=session, user=row, changes=SmtpUserChanges(generate_password=True)
        )
    assert rotated.generated_password not in (None, saved.generated_password)
    assert await login(world, "generated", saved.generated_password) is None
    assert rotated.generated_password
    assert await login(world, "generated", rotated.generated_password) is not None


async def test_user_names_are_unique_across_accounts(world: World) -> None:
    await create(world, username="shared-name")

    with pytest.raises(Conflict):
        await create(world, account_id=world.other_account_id, username="shared-name")
    with pytest.raises(NotFound):  # and another account cannot see it by name
        async with world.database.session() as session:
            await service.find_smtp_user(
                session=session, account_id=world.other_account_id, username="shared-name"
            )
    other = await create(world, account_id=world.other_account_id, username="other-name")
    with pytest.raises(Conflict):
        async with world.database.session() as session:
            row = await service.get_smtp_user(
                session=session, account_id=world.other_account_id, ref=other.public_id
            )
            await service.update_smtp_user(
                session=session, user=row, changes=SmtpUserChanges(username="shared-name")
            )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"username": "abcd"}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "line\r\nbreak"}, "username"),
        ({"username": "x" * 101}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "twelve chars\n but a line break"}, "password"),
        ({"description": "a\r\nBcc: evil@example.com"}, "description"),
        ({"allowed_senders": ["not an address"]}, "allowed_senders.0"),
        ({"allowed_senders": ["ok@example.com", "1.2.3.4"]}, "allowed_senders.1"),
        ({"allowed_senders": [f"u{i}@example.com" for i in range(101)]}, "allowed_senders"),
        ({"rate_limit": SendingRateLimit(0, 60)}, "rate_limit.max_messages"),
        ({"rate_limit": SendingRateLimit(10, 0)}, "rate_limit.period_seconds"),
        ({"password": PASSWORD, "generate_password": True}, "generate_password"),
    ],
)
async def test_invalid_values_name_their_field(
    world: World, values: dict[str, object], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        await create(world, **values)

    assert field in [issue.field for issue in caught.value.issues]


async def test_allowed_senders_are_normalised_and_deduplicated(world: World) -> None:
    user = await create(
        world,
        allowed_senders=["App@Example.COM", "@Example.org", "example.org", "app@example.com"],
    )

    assert user.allowed_senders == ["App@example.com", "example.org"]


def principal(*rules: str) -> SmtpPrincipal:
    return SmtpPrincipal(
        account_id=1, user_id=1, username="u", allowed_senders=rules, rate_limit=None
    )


@pytest.mark.parametrize(
    ("rules", "address", "allowed"),
    [
        ((), "anyone@anywhere.example", True),
        ((), "", True),
        (("app@example.com",), "app@example.com", True),
        (("app@example.com",), "APP@Example.com", True),
        (("app@example.com",), "other@example.com", False),
        (("example.com",), "anyone@example.com", True),
        (("example.com",), "anyone@EXAMPLE.COM", True),
        (("example.com",), "anyone@sub.example.com", False),
        (("example.com",), "anyone@notexample.com", False),
        (("example.com",), "example.com", False),
        (("example.com",), "", False),
        (("example.com",), "@example.com", False),
        (("a@example.com", "example.org"), "b@example.org", True),
        (("a@example.com", "example.org"), "b@example.com", False),
    ],
)
def test_sender_allowed(rules: tuple[str, ...], address: str, allowed: bool) -> None:
    assert sender_allowed(principal(*rules), address) is allowed


async def test_sender_allowed_reads_a_stored_user_too(world: World) -> None:
    user = await create(world, allowed_senders=["example.com"])

    assert sender_allowed(user, "x@example.com")
    assert not sender_allowed(user, "x@example.net")


async def test_list_pages_in_creation_order_per_account(world: World) -> None:
    names = [f"lister-{i}" for i in range(5)]
    for name in names:
        await create(world, username=name)
    await create(world, account_id=world.other_account_id, username="someone-else")

    seen: list[str] = []
    after = None
    async with world.database.session() as session:
        while True:
            page = await service.list_smtp_users(
                session=session, account_id=world.account_id, limit=2, after_id=after
            )
            seen += [user.username for user in page.items]
            if not page.has_more:
                break
            after = page.items[-1].id
        everything = await service.list_smtp_users(
            session=session, account_id=world.account_id, limit=None
        )
    assert seen == names
    assert [user.username for user in everything.items] == names
