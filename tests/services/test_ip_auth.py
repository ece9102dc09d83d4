"""IP authentication as the relay listener sees it: which account an address relays for, and
one account per address."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mailgate.errors import Conflict, Invalid, NotFound
from mailgate.services import accounts
from mailgate.services import ip_auth as service
from mailgate.store.db import Database
from mailgate.store.models import IpAuthNetwork


@dataclass
class World:
    database: Database
    one: int
    two: int


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


async def add(world: World, account_id: int, network: str, description: str = "") -> IpAuthNetwork:
    async with world.database.session() as session:
        return await service.add_network(
            session=session, account_id=account_id, network=network, description=description
        )


async def owner(world: World, ip: str) -> int | None:
    async with world.database.session() as session:
        return await service.account_for_ip(session=session, ip=ip)


async def test_listed_addresses_relay_for_their_account_only(world: World) -> None:
    await add(world, world.one, "192.0.2.0/24", "office")
    await add(world, world.one, "2001:db8:1::/48")
    await add(world, world.two, "198.51.100.7")

    assert await owner(world, "192.0.2.0") == world.one
    assert await owner(world, "192.0.2.255") == world.one
    assert await owner(world, "192.0.3.0") is None
    assert await owner(world, "192.0.1.255") is None
    assert await owner(world, "2001:db8:1:ffff::1") == world.one
    assert await owner(world, "2001:db8:2::1") is None
    assert await owner(world, "198.51.100.7") == world.two
    assert await owner(world, "198.51.100.8") is None
    assert await owner(world, "::ffff:192.0.2.9") == world.one  # a dual-stack socket's view
    assert await owner(world, "::ffff:198.51.100.7") == world.two
    assert await owner(world, "not an address") is None
    async with world.database.session() as session:
        found = await service.account_for_ip(session=session, ip=ipaddress.ip_address("192.0.2.77"))
    assert found == world.one


async def test_ipv4_and_ipv6_ranges_do_not_mix(world: World) -> None:
    await add(world, world.one, "10.0.0.0/8")

    # 10.0.0.1 as an integer is also a tiny IPv6 address: versions must not be confused.
    assert await owner(world, "::a00:1") is None
    assert await owner(world, "10.0.0.1") == world.one


async def test_networks_are_normalised(world: World) -> None:
    single = await add(world, world.one, " 192.0.2.7 ")
    wide = await add(world, world.one, "2001:DB8:0:0::/64")
    mapped = await add(world, world.one, "::ffff:203.0.113.0/120")

    assert single.network == "192.0.2.7/32"
    assert wide.network == "2001:db8::/64"
    assert mapped.network == "203.0.113.0/24"
    assert await owner(world, "203.0.113.200") == world.one


@pytest.mark.parametrize(
    "network",
    [
        "",
        "abc",
        "192.0.2.300",
        "192.0.2.5/24",
        "0.0.0.0/0",
        "10.0.0.0/7",
        "::/0",
        "2001::/16",
        "224.0.0.1",
        "0.0.0.0/32",
        "192.0.2.1\r\n",
        "192.0.2.0/33",
    ],
)
async def test_bad_networks_are_refused(world: World, network: str) -> None:
    with pytest.raises(Invalid) as caught:
        await add(world, world.one, network)

    assert caught.value.issues[0].field == "network"


async def test_another_accounts_overlapping_network_is_a_conflict(world: World) -> None:
    await add(world, world.one, "192.0.2.0/24")

    for overlapping, named in [
        ("192.0.2.0/24", "192.0.2.0/24"),
        ("192.0.2.128/25", "192.0.2.128/25"),
        ("192.0.2.9", "192.0.2.9/32"),
        ("192.0.0.0/16", "192.0.0.0/16"),
    ]:
        with pytest.raises(Conflict) as caught:
            await add(world, world.two, overlapping)
        assert "another account" in caught.value.message
        assert caught.value.params == {"network": named}  # the other's network is not named
    await add(world, world.two, "192.0.3.0/24")  # next door is fine
    assert await owner(world, "192.0.2.1") == world.one


async def test_the_same_account_may_overlap_itself_but_not_repeat(world: World) -> None:
    await add(world, world.one, "10.0.0.0/8")
    await add(world, world.one, "10.1.0.0/16")

    with pytest.raises(Conflict) as caught:
        await add(world, world.one, "10.1.0.0/16")
    assert "already listed" in caught.value.message
    assert await owner(world, "10.1.2.3") == world.one


async def test_find_save_and_remove_by_value(world: World) -> None:
    async with world.database.session() as session:
        row, added = await service.save_network(
            session=session, account_id=world.one, network="192.0.2.7", description="printer"
        )
        assert added and row.description == "printer"
        again, added = await service.save_network(
            session=session, account_id=world.one, network="192.0.2.7/32", description="copier"
        )
        assert not added and again.id == row.id and again.description == "copier"
        kept, _ = await service.save_network(
            session=session, account_id=world.one, network="192.0.2.7", description=None
        )
        assert kept.description == "copier"
        with pytest.raises(NotFound):
            await service.find_network(session=session, account_id=world.two, network="192.0.2.7")
        found = await service.find_network(
            session=session, account_id=world.one, network="192.0.2.7"
        )
        await service.remove_network(session=session, row=found)
    assert await owner(world, "192.0.2.7") is None


async def test_a_race_that_lets_two_accounts_claim_an_address_relays_for_neither(
    world: World,
) -> None:
    await add(world, world.one, "192.0.2.0/24")
    async with world.database.session() as session:  # as if both checks ran before both writes
        network = ipaddress.ip_network("192.0.2.0/25")
        session.add(
            IpAuthNetwork(
                public_id="ipnet_race",
                account_id=world.two,
                network=str(network),
                version=4,
                range_start=f"{int(network.network_address):032x}",
                range_end=f"{int(network.broadcast_address):032x}",
                description="",
            )
        )
        await session.commit()

    assert await owner(world, "192.0.2.1") is None
    assert await owner(world, "192.0.2.200") == world.one
