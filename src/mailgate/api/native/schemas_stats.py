"""Native ``GET /api/v1/stats`` answer (the request is query parameters only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mailgate.api.native.schemas import Meta


class StatsCounts(BaseModel):
    """Events per type; ``bounce`` = ``hard_bounce`` + ``soft_bounce`` (+ unclassified)."""

    processed: int
    delivered: int
    deferred: int
    bounce: int
    hard_bounce: int
    soft_bounce: int
    reject: int
    failed: int
    cancelled: int
    spam: int
    unsubscribe: int
    open: int
    click: int


class StatsBucket(BaseModel):
    start: str = Field(description="The bucket's first instant (UTC hour or day).")
    counts: StatsCounts


class StatsGroup(BaseModel):
    provider_id: str | None = Field(
        description="Grouped by provider: its id (null: events no provider handled)."
    )
    tag: str | None = Field(description="Grouped by tag: the tag.")
    totals: StatsCounts
    series: list[StatsBucket]


class StatsOut(BaseModel):
    start: str
    end: str
    interval: Literal["hour", "day"]
    group_by: Literal["provider", "tag"] | None
    totals: StatsCounts = Field(description="All matching mail (a message counts once).")
    groups: list[StatsGroup]


class StatsEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: StatsOut
