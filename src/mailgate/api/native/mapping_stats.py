"""Native stats: query parameters -> :class:`~mailgate.services.stats.StatsQuery`, and the
report -> JSON (provider row ids become public ids)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from mailgate.api.fields import iso
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services.stats import Bucket, Counts, Dimension, Group, Interval, Report

__all__ = ["DEFAULT_SPAN", "QUERY_PARAMETERS", "check_parameters", "report_out"]

QUERY_PARAMETERS: Final = frozenset({"start", "end", "interval", "group_by", "provider", "tag"})
# Without ``start``: the last week by day, the last day by hour.
DEFAULT_SPAN: Final = {Interval.DAY: timedelta(days=7), Interval.HOUR: timedelta(days=1)}


def check_parameters(names: Iterable[str]) -> None:
    """Unknown query parameters are errors, not silently ignored filters."""
    unknown = sorted(set(names) - QUERY_PARAMETERS)
    if unknown:
        raise Invalid.field(
            unknown[0],
            N_("Unknown parameter. Known ones: {known}."),
            "unknown_parameter",
            known=", ".join(sorted(QUERY_PARAMETERS)),
        )


def choice(kind: type[Interval] | type[Dimension], value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError as exc:
        raise Invalid.field(
            field,
            N_("Must be one of: {expected}."),
            "invalid_choice",
            expected=", ".join(c.value for c in kind),
        ) from exc


def counts_out(counts: Counts) -> dict[str, int]:
    return dict(counts)


def _bucket_out(bucket: Bucket) -> dict[str, Any]:
    return {"start": iso(bucket.start), "counts": counts_out(bucket.counts)}


def _group_out(group: Group, by: Dimension | None, providers: Mapping[int, str]) -> dict[str, Any]:
    provider = providers.get(group.key) if isinstance(group.key, int) else None
    return {
        "provider_id": provider if by is Dimension.PROVIDER else None,
        "tag": group.key if by is Dimension.TAG else None,
        "totals": counts_out(group.totals),
        "series": [_bucket_out(b) for b in group.buckets],
    }


def report_out(report: Report, providers: Mapping[int, str]) -> dict[str, Any]:
    return {
        "start": iso(report.start),
        "end": iso(report.end),
        "interval": report.interval.value,
        "group_by": report.group_by.value if report.group_by else None,
        "totals": counts_out(report.totals),
        "groups": [_group_out(g, report.group_by, providers) for g in report.groups],
    }


def default_start(end: datetime, interval: Interval) -> datetime:
    return end - DEFAULT_SPAN[interval]
