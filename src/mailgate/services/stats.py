"""Stats: event counts over a time range, in hourly or daily buckets, per provider or tag.

Counts come from ``stats_hourly`` (the rollup, see :mod:`mailgate.services.stats_rollup`)
for events up to its watermark, plus the events past it read from ``events`` (a short
primary-key range): exact at every moment, and a few rows per hour however many events.
The watermark is read in the same statement as the rollup, so a pass committing between the
two reads can neither drop nor double an event.

Buckets are UTC hours or days. A message with several tags counts once under each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import case

from mailgate.domain import EventType
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services.stats_rollup import STATE_ID, hour_of
from mailgate.store.models import (
    Event,
    Message,
    MessageTag,
    StatsHourly,
    StatsRollupState,
    table_of,
)

__all__ = [
    "COUNTERS",
    "MAX_BUCKETS",
    "Bucket",
    "Counts",
    "Dimension",
    "Group",
    "Interval",
    "Report",
    "SenderTotals",
    "StatsQuery",
    "empty_counts",
    "event_report",
    "event_totals",
    "month_of",
    "recent_statement",
    "rollup_statement",
    "sender_totals",
    "sum_counts",
]

# What is counted: every event type, and bounces split by class.
COUNTERS: Final = (
    *(kind.value for kind in EventType),
    "hard_bounce",
    "soft_bounce",
)
MAX_BUCKETS: Final = 2000
MAX_TAG: Final = 128

Counts = dict[str, int]


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self is Interval.HOUR else timedelta(days=1)

    def floor(self, when: datetime) -> datetime:
        when = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return when if self is Interval.HOUR else when.replace(hour=0)

    def ceil(self, when: datetime) -> datetime:
        floor = self.floor(when)
        return floor if floor == when.astimezone(UTC) else floor + self.step


class Dimension(StrEnum):
    PROVIDER = "provider"
    TAG = "tag"


@dataclass(frozen=True)
class StatsQuery:
    """``start``/``end`` are widened to whole buckets; ``tag`` keeps one tag's mail only."""

    account_id: int
    start: datetime
    end: datetime
    interval: Interval = Interval.DAY
    group_by: Dimension | None = None
    provider_ids: frozenset[int] = frozenset()
    tag: str | None = None


@dataclass(frozen=True)
class Bucket:
    start: datetime
    counts: Counts


@dataclass(frozen=True)
class Group:
    """One provider's (``key`` its row id, None: no provider) or one tag's series."""

    key: int | str | None
    totals: Counts
    buckets: list[Bucket]


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    interval: Interval
    group_by: Dimension | None
    totals: Counts
    groups: list[Group]


@dataclass
class SenderTotals:
    sender: str
    counts: Counts = field(default_factory=lambda: empty_counts())
    bytes: int = 0


def empty_counts() -> Counts:
    return dict.fromkeys(COUNTERS, 0)


def _add(counts: Counts, kind: str, bounce_class: str, number: int) -> None:
    if kind in counts:
        counts[kind] += number
    if kind == EventType.BOUNCE.value and bounce_class in ("hard", "soft"):
        counts[f"{bounce_class}_bounce"] += number


def _as_utc(value: datetime | str) -> datetime:
    """A bucket as the database answers it (SQLite: its stored text)."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _bucket(column: Any, interval: Interval, dialect: str) -> ColumnElement[Any]:
    if interval is Interval.HOUR:
        return hour_of(column, dialect)
    if dialect == "postgresql":
        return func.timezone("UTC", func.date_trunc("day", func.timezone("UTC", column)))
    return func.substr(column, 1, 10).op("||")(literal(" 00:00:00.000000"))


def check_range(start: datetime, end: datetime, interval: Interval) -> tuple[datetime, datetime]:
    """The range widened to whole buckets, or Invalid when it is empty or too long."""
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid.field("start", N_("Must include a time zone, such as Z or +02:00."))
    low, high = interval.floor(start), interval.ceil(end)
    if high <= low or end <= start:
        raise Invalid.field("end", N_("Must be later than start."), "invalid_range")
    buckets = (high - low) // interval.step
    if buckets > MAX_BUCKETS:
        raise Invalid.field(
            "end",
            N_(
                "The range holds {count} buckets; at most {max} are answered: narrow it or use "
                "a longer interval."
            ),
            "range_too_long",
            count=buckets,
            max=MAX_BUCKETS,
        )
    return low, high


def check_tag(tag: str) -> str:
    if not tag or len(tag) > MAX_TAG or any(ord(c) < 32 or ord(c) == 127 for c in tag):
        raise Invalid.field(
            "tag", N_("Must be 1 to {max} characters, without control characters."), max=MAX_TAG
        )
    return tag


# Rows of one aggregate: (bucket, group key) -> counts
_Rows = dict[tuple[datetime, int | str | None], Counts]


def rollup_statement(
    query: StatsQuery, dialect: str, *, each_tag: bool, group: Dimension | None
) -> Select[Any]:
    """The rollup's rows of ``query`` summed per bucket (and group), each row with the
    watermark they stand for (one statement: one snapshot); one row at least."""
    r = table_of(StatsHourly).c
    s = table_of(StatsRollupState).c
    r_tag = r.tag == query.tag if query.tag else (r.tag != "" if each_tag else r.tag == "")
    on = [
        r.account_id == query.account_id,
        r.hour >= query.start,
        r.hour < query.end,
        r.sender == "",
        r_tag,
    ]
    if query.provider_ids:
        on.append(r.provider_id.in_(query.provider_ids))
    bucket = _bucket(r.hour, query.interval, dialect)
    keys = _key_columns(group, r.provider_id, r.tag)
    return (
        select(s.rolled_through, bucket, r.type, r.bounce_class, func.sum(r.events), *keys)
        .select_from(table_of(StatsRollupState))
        .outerjoin(table_of(StatsHourly), and_(*on))
        .where(s.id == STATE_ID)
        .group_by(s.rolled_through, bucket, r.type, r.bounce_class, *keys)
    )


def _event_account(dialect: str, watermark: int) -> ColumnElement[int]:
    """``events.account_id`` for a query of the events past ``watermark``.

    SQLite, without statistics, prefers (account_id, created_at) to the rowid range past
    the watermark, which then counts every event of the range again: ``+ 0`` hides that
    index from it whenever there is a watermark to range from.
    """
    account_id: ColumnElement[int] = table_of(Event).c.account_id
    return account_id + 0 if dialect == "sqlite" and watermark > 0 else account_id


def recent_statement(
    query: StatsQuery, dialect: str, watermark: int, *, each_tag: bool, group: Dimension | None
) -> Select[Any]:
    """The events past ``watermark`` (a primary-key range) summed like the rollup."""
    e = table_of(Event).c
    t = table_of(MessageTag).c
    bucket = _bucket(e.created_at, query.interval, dialect)
    provider = func.coalesce(e.provider_id, 0)
    bounce = func.coalesce(e.bounce_class, "")
    keys = _key_columns(group, provider, t.tag)
    recent = select(bucket, e.type, bounce, func.count(), *keys).where(
        e.id > watermark,
        _event_account(dialect, watermark) == query.account_id,
        e.created_at >= query.start,
        e.created_at < query.end,
    )
    if query.tag or each_tag:
        on = t.message_id == e.message_id
        recent = recent.join_from(
            table_of(Event), table_of(MessageTag), and_(on, t.tag == query.tag) if query.tag else on
        )
    if query.provider_ids:
        recent = recent.where(provider.in_(query.provider_ids))
    return recent.group_by(bucket, e.type, bounce, *keys)


async def _aggregate(
    session: AsyncSession, query: StatsQuery, *, each_tag: bool, group: Dimension | None
) -> _Rows:
    dialect = session.get_bind().dialect.name
    rows: _Rows = defaultdict(empty_counts)
    watermark = 0
    rolled = rollup_statement(query, dialect, each_tag=each_tag, group=group)
    for through, bucket, kind, bounce_class, number, *key in await session.execute(rolled):
        watermark = int(through)
        if kind is not None:
            _add(rows[(_as_utc(bucket), _key(group, key))], kind, bounce_class, int(number))
    recent = recent_statement(query, dialect, watermark, each_tag=each_tag, group=group)
    for bucket, kind, bounce_class, number, *key in await session.execute(recent):
        _add(rows[(_as_utc(bucket), _key(group, key))], kind, bounce_class, int(number))
    return rows


def _key_columns(group: Dimension | None, provider: Any, tag: Any) -> list[Any]:
    if group is Dimension.PROVIDER:
        return [provider]
    if group is Dimension.TAG:
        return [tag]
    return []


def _key(group: Dimension | None, values: list[Any]) -> int | str | None:
    if group is Dimension.PROVIDER:
        return int(values[0]) or None
    if group is Dimension.TAG:
        return str(values[0])
    return None


def _series(
    rows: Mapping[datetime, Counts], start: datetime, end: datetime, step: timedelta
) -> list[Bucket]:
    buckets: list[Bucket] = []
    at = start
    while at < end:
        buckets.append(Bucket(at, rows.get(at) or empty_counts()))
        at += step
    return buckets


def sum_counts(counts: Iterable[Counts]) -> Counts:
    """The counts added up, counter by counter."""
    total = empty_counts()
    for one in counts:
        for name, number in one.items():
            total[name] += number
    return total


async def event_report(*, session: AsyncSession, query: StatsQuery) -> Report:
    """Counts per bucket (every bucket of the range, empty ones too) and per group."""
    start, end = check_range(query.start, query.end, query.interval)
    query = StatsQuery(
        query.account_id,
        start,
        end,
        query.interval,
        query.group_by,
        query.provider_ids,
        check_tag(query.tag) if query.tag is not None else None,
    )
    each_tag = query.group_by is Dimension.TAG and not query.tag
    rows = await _aggregate(session, query, each_tag=each_tag, group=query.group_by)
    by_group: dict[int | str | None, dict[datetime, Counts]] = defaultdict(dict)
    for (bucket, key), counts in rows.items():
        by_group[key][bucket] = counts
    if query.group_by is None:
        by_group.setdefault(None, {})
    groups = [
        Group(key, sum_counts(buckets.values()), _series(buckets, start, end, query.interval.step))
        for key, buckets in sorted(
            by_group.items(), key=lambda item: (item[0] is None, str(item[0]))
        )
    ]
    if each_tag:  # tags overlap: the totals are all the mail's, not the sum of the tags
        everything = await _aggregate(session, query, each_tag=False, group=None)
        totals = sum_counts(everything.values())
    else:
        totals = sum_counts(g.totals for g in groups)
    return Report(start, end, query.interval, query.group_by, totals, groups)


async def event_totals(
    *, session: AsyncSession, account_id: int, start: datetime, end: datetime
) -> Counts:
    """Counts of the account's events from ``start`` (its hour) to ``end`` (its hour's end)."""
    low, high = Interval.HOUR.floor(start), Interval.HOUR.ceil(end)
    query = StatsQuery(account_id, low, high, Interval.HOUR)
    rows = await _aggregate(session, query, each_tag=False, group=None)
    return sum_counts(rows.values())


async def sender_totals(
    *, session: AsyncSession, account_id: int, start: datetime, end: datetime
) -> list[SenderTotals]:
    """Counts and bytes sent per envelope sender (lower-cased), most mail first."""
    low, high = Interval.HOUR.floor(start), Interval.HOUR.ceil(end)
    r = table_of(StatsHourly).c
    s = table_of(StatsRollupState).c
    rolled = (
        select(
            s.rolled_through,
            r.sender,
            r.type,
            r.bounce_class,
            func.sum(r.events),
            func.sum(r.bytes),
        )
        .select_from(table_of(StatsRollupState))
        .outerjoin(
            table_of(StatsHourly),
            and_(r.account_id == account_id, r.hour >= low, r.hour < high, r.sender != ""),
        )
        .where(s.id == STATE_ID)
        .group_by(s.rolled_through, r.sender, r.type, r.bounce_class)
    )
    senders: dict[str, SenderTotals] = {}

    def add(sender: str, kind: str, bounce_class: str, number: int, size: int) -> None:
        found = senders.setdefault(sender, SenderTotals(sender))
        _add(found.counts, kind, bounce_class, number)
        found.bytes += size

    watermark = 0
    for through, sender, kind, bounce_class, number, size in await session.execute(rolled):
        watermark = int(through)
        if kind is not None:
            add(sender, kind, bounce_class, int(number), int(size or 0))
    dialect = session.get_bind().dialect.name
    e = table_of(Event).c
    m = table_of(Message).c
    sender_column = func.lower(m.envelope_from)
    bounce = func.coalesce(e.bounce_class, "")
    size = func.sum(case((e.type == EventType.PROCESSED.value, m.size), else_=0))
    recent = (
        select(sender_column, e.type, bounce, func.count(), size)
        .join_from(table_of(Event), table_of(Message), m.id == e.message_id)
        .where(
            e.id > watermark,
            _event_account(dialect, watermark) == account_id,
            e.created_at >= low,
            e.created_at < high,
        )
        .group_by(sender_column, e.type, bounce)
    )
    for sender, kind, bounce_class, number, size_sum in await session.execute(recent):
        add(sender, kind, bounce_class, int(number), int(size_sum or 0))
    return sorted(senders.values(), key=lambda one: (-one.counts["processed"], one.sender))


def month_of(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) holding ``now``: its first instant and the next month's."""
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following
