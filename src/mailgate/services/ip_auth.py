"""IP authentication: networks whose clients relay without SMTP AUTH, each for one account.

A network belongs to one account only: one that overlaps another account's is refused, as
relaying from an address two accounts claim would have to guess whose mail it is. Within one
account networks may overlap (``10.0.0.0/8`` and ``10.1.0.0/16``).

Ranges are stored as fixed-width hex (see :class:`~mailgate.store.models.IpAuthNetwork`), so
:func:`account_for_ip` is one indexed query on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.errors import Conflict, Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.store.models import IpAuthNetwork
from mailgate.validation import check_network, check_no_control_chars

__all__ = [
    "IpNetwork",
    "NetworkPage",
    "account_for_ip",
    "add_network",
    "find_network",
    "get_network",
    "list_networks",
    "parse_network",
    "remove_network",
    "save_network",
    "update_network",
]

PUBLIC_ID_PREFIX: Final = "ipnet_"
MAX_DESCRIPTION: Final = 255

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NetworkPage:
    items: list[IpAuthNetwork]
    has_more: bool


def parse_network(value: str, field: str = "network") -> IpNetwork:
    """``value`` as a normalised network (see :func:`mailgate.validation.check_network`)."""
    try:
        return ipaddress.ip_network(check_network(value))
    except ValueError as exc:
        raise Invalid.field(field, str(exc)) from exc


def _hex(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"{int(address):032x}"


def _check_description(description: str | None) -> str:
    text = description or ""
    issues: list[Issue] = []
    try:
        check_no_control_chars(text)
    except ValueError as exc:
        issues.append(Issue("description", str(exc)))
    if len(text) > MAX_DESCRIPTION:
        issues.append(
            Issue(
                "description",
                N_("Must be at most {max_length} characters long."),
                "too_long",
                {"max_length": MAX_DESCRIPTION},
            )
        )
    if issues:
        raise Invalid(issues)
    return text


async def _ensure_unclaimed(session: AsyncSession, account_id: int, network: IpNetwork) -> None:
    start, end = _hex(network.network_address), _hex(network.broadcast_address)
    query = select(IpAuthNetwork.account_id, IpAuthNetwork.network).where(
        IpAuthNetwork.version == network.version,
        IpAuthNetwork.range_start <= end,
        IpAuthNetwork.range_end >= start,
    )
    for owner, listed in (await session.execute(query)).all():
        if owner != account_id:
            raise _overlaps(network)
        if listed == str(network):
            raise _listed(network)


def _overlaps(network: IpNetwork) -> Conflict:
    return Conflict(
        N_("The network {network} overlaps a network of another account."), network=str(network)
    )


def _listed(network: IpNetwork) -> Conflict:
    return Conflict(N_("The network {network} is already listed."), network=str(network))


async def add_network(
    *, session: AsyncSession, account_id: int, network: str, description: str | None = None
) -> IpAuthNetwork:
    """List ``network`` (an address or CIDR) for ``account_id``; Conflict when it is listed
    already or overlaps another account's."""
    parsed = parse_network(network)
    text = _check_description(description)
    await _ensure_unclaimed(session, account_id, parsed)
    row = IpAuthNetwork(
        public_id=PUBLIC_ID_PREFIX + secrets.token_hex(12),
        account_id=account_id,
        network=str(parsed),
        version=parsed.version,
        range_start=_hex(parsed.network_address),
        range_end=_hex(parsed.broadcast_address),
        description=text,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:  # listed by another request between check and write
        await session.rollback()
        raise _listed(parsed) from exc
    return row


async def update_network(
    *, session: AsyncSession, row: IpAuthNetwork, description: str | None
) -> IpAuthNetwork:
    row.description = _check_description(description)
    await session.commit()
    return row


async def save_network(
    *, session: AsyncSession, account_id: int, network: str, description: str | None
) -> tuple[IpAuthNetwork, bool]:
    """Add ``network`` or, when this account lists it already, change its description
    (``None`` keeps it). Returns the row and whether it was added."""
    try:
        row = await find_network(session=session, account_id=account_id, network=network)
    except NotFound:
        added = await add_network(
            session=session, account_id=account_id, network=network, description=description
        )
        return added, True
    if description is not None:
        row = await update_network(session=session, row=row, description=description)
    return row, False


async def remove_network(*, session: AsyncSession, row: IpAuthNetwork) -> None:
    await session.delete(row)
    await session.commit()


async def get_network(*, session: AsyncSession, account_id: int, ref: str) -> IpAuthNetwork:
    """A listed network of this account by its public id."""
    text = ref.strip()
    query = select(IpAuthNetwork).where(
        IpAuthNetwork.account_id == account_id, IpAuthNetwork.public_id == text
    )
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(N_("No IP authentication entry with id {id}."), id=text[:64])
    return row


async def find_network(*, session: AsyncSession, account_id: int, network: str) -> IpAuthNetwork:
    """A listed network of this account by its value (normalised first: ``192.0.2.7`` finds
    ``192.0.2.7/32``)."""
    parsed = parse_network(network)
    query = select(IpAuthNetwork).where(
        IpAuthNetwork.account_id == account_id, IpAuthNetwork.network == str(parsed)
    )
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(N_("The network {network} is not listed."), network=str(parsed))
    return row


async def list_networks(
    *, session: AsyncSession, account_id: int, limit: int | None, after_id: int | None = None
) -> NetworkPage:
    """Networks in the order they were listed; ``after_id`` is a cursor; ``limit=None``: all."""
    query = (
        select(IpAuthNetwork)
        .where(IpAuthNetwork.account_id == account_id)
        .order_by(IpAuthNetwork.id)
    )
    if after_id is not None:
        query = query.where(IpAuthNetwork.id > after_id)
    if limit is None:
        return NetworkPage(items=list((await session.execute(query)).scalars()), has_more=False)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return NetworkPage(items=rows[:limit], has_more=len(rows) > limit)


async def account_for_ip(
    *, session: AsyncSession, ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address
) -> int | None:
    """The account whose listed networks contain ``ip`` (a client's address, IPv4-mapped IPv6
    included), or None: not listed, not an address, or (after a race between two accounts
    listing at once) claimed by more than one account, when relaying is refused."""
    try:
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address
    point = _hex(address)
    query = (
        select(IpAuthNetwork.account_id)
        .where(
            IpAuthNetwork.version == address.version,
            IpAuthNetwork.range_start <= point,
            IpAuthNetwork.range_end >= point,
        )
        .distinct()
        .limit(2)
    )
    owners = list((await session.execute(query)).scalars())
    return owners[0] if len(owners) == 1 else None
