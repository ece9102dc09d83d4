"""SMTP2GO ``/v3/stats/...`` bodies, in SMTP2GO's field names. Percentages of the 30-day
reports are strings with two decimals (``"1.25"``), as SMTP2GO answers them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mailgate.api.smtp2go.schemas import ShortText, Smtp2goRequest, Timestamp


class StatsRequest(Smtp2goRequest):
    """``email_bounces``, ``email_spam``, ``email_unsubs``, ``email_summary``, ``email_cycle``."""

    username: ShortText | None = Field(
        default=None, description="SMTP2GO's per-user stats; Mailgate has none: leave it out."
    )


class HistoryRequest(Smtp2goRequest):
    start_date: Timestamp | None = Field(default=None, description="Default: 30 days ago, 00:00.")
    end_date: Timestamp | None = Field(default=None, description="Default: now.")
    group_by: ShortText | None = Field(default=None, description="email_address or domain.")
    subaccounts: list[ShortText] | None = Field(default=None, max_length=100)


class Bounces(BaseModel):
    emails: int
    rejects: int
    softbounces: int
    hardbounces: int
    bounce_percent: str


class Spam(BaseModel):
    emails: int
    rejects: int
    spams: int
    spam_percent: str


class Unsubs(BaseModel):
    emails: int
    rejects: int
    unsubscribes: int
    unsubscribe_percent: str


class Cycle(BaseModel):
    cycle_start: str
    cycle_end: str
    cycle_used: int
    cycle_remaining: int
    cycle_max: int


class Summary(Cycle):
    email_count: int
    rejects: int
    bounce_rejects: int
    softbounces: int
    hardbounces: int
    bounce_percent: str
    spam_emails: int
    spam_rejects: int
    spam_percent: str
    unsubscribes: int
    unsubscribe_percent: str
    opens: int
    clicks: int


class HistoryRow(BaseModel):
    email_address: str | None = None
    domain: str | None = None
    domain_verified: bool | None = None
    lastip: str
    used: int
    bytecount: int
    avgsize: float
    bounces: int
    clicks: int
    opens: int
    rejects: int
    spam: int
    unsubscribes: int
    bounce_percent: float
    open_percent: float
    reject_percent: float
    spam_percent: float
    unsubscribe_percent: float


class History(BaseModel):
    count: int
    history: list[HistoryRow]
    bounce_percent_total: float
    open_percent_total: float
    reject_percent_total: float
    spam_percent_total: float
    unsubscribe_percent_total: float


class BouncesEnvelope(BaseModel):
    request_id: str
    data: Bounces


class SpamEnvelope(BaseModel):
    request_id: str
    data: Spam


class UnsubsEnvelope(BaseModel):
    request_id: str
    data: Unsubs


class CycleEnvelope(BaseModel):
    request_id: str
    data: Cycle


class SummaryEnvelope(BaseModel):
    request_id: str
    data: Summary


class HistoryEnvelope(BaseModel):
    request_id: str
    data: History
