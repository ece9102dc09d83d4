"""SQLAlchemy table models. These are storage, not API schemas: surfaces have their own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    false,
    inspect,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "IN_QUEUE",
    "QUEUED_STATUSES",
    "Account",
    "ApiKey",
    "Base",
    "Event",
    "IdempotencyRecord",
    "IpAuthNetwork",
    "Message",
    "MessageContent",
    "MessageRecipient",
    "MessageTag",
    "Provider",
    "SmtpTestJob",
    "SmtpUser",
    "StatsHourly",
    "StatsRollupState",
    "Suppression",
    "Template",
    "Webhook",
    "WebhookDelivery",
    "WebhookFanoutCursor",
    "as_loaded",
    "table_of",
    "time_ordered_token",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def time_ordered_token() -> str:
    """24 hex digits, the first 12 the time in milliseconds: public ids made of it sort by
    creation, so their unique index grows at its right edge (random ids land on a different
    page of it each, and every commit wrote all of those pages again)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def table_of(model: type[Base]) -> Table:
    """A model's table, typed, for Core statements on the hot paths (bulk writes)."""
    return cast(Table, model.__table__)


M = TypeVar("M", bound="Base")


def as_loaded(model: type[M], values: Mapping[str, Any]) -> M:
    """An instance holding ``values`` (by attribute name) as if loaded, for rows written with
    Core and answered from, never added to a session: without the unit of work's event per
    attribute set, it costs a twentieth of ``model(**values)``."""
    instance = cast(M, inspect(model).class_manager.new_instance())
    instance.__dict__.update(values)
    return instance


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320))
    is_root: Mapped[bool] = mapped_column(Boolean, default=False)
    # Engagement defaults for mail that does not say (services.tracking); see the tracking block.
    track_opens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    transactional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key. Only ``prefix`` (shown to people) and the SHA-256 of the whole key are kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Provider(Base):
    """An upstream SMTP connection: the union of every surface's fields."""

    __tablename__ = "providers"
    __table_args__ = (
        # At most one default provider per account, enforced by the database too.
        Index(
            "uq_providers_default_per_account",
            "account_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    driver: Mapped[str] = mapped_column(String(32), default="smtp")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(255))
    password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_method: Mapped[str] = mapped_column(String(16), default="auto")
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    oauth_email: Mapped[str | None] = mapped_column(String(320))
    oauth_refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    from_email: Mapped[str | None] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(255))
    reply_to_email: Mapped[str | None] = mapped_column(String(320))
    reply_to_name: Mapped[str | None] = mapped_column(String(255))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    percentage: Mapped[int] = mapped_column(Integer, default=100)
    tracking_domain: Mapped[str | None] = mapped_column(String(255))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_tested_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IdempotencyRecord(Base):
    """The first answer to a write made with an Idempotency-Key, replayed for 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("account_id", "endpoint", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class SmtpTestJob(Base):
    """A background connection test with a test mail (DocSpace's ``/smtp/test``)."""

    __tablename__ = "smtp_test_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(64))
    percents: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


QUEUED_STATUSES = ("scheduled", "queued", "deferred")


class Message(Base):
    """One accepted message. The queue is the rows in a QUEUED_STATUSES status whose
    ``due_at`` has come and whose lease (if any) has expired."""

    __tablename__ = "messages"
    __table_args__ = (
        Index(
            "ix_messages_due",
            "due_at",
            sqlite_where=text("status IN ('scheduled', 'queued', 'deferred')"),
            postgresql_where=text("status IN ('scheduled', 'queued', 'deferred')"),
        ),
        Index("ix_messages_account_created", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None
    )
    last_provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None
    )
    envelope_from: Mapped[str] = mapped_column(String(320))
    from_header: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    # indexed: a bounce whose VERP address was lost is tied to its message by this header
    message_id_header: Mapped[str] = mapped_column(String(255), index=True)
    smtputf8: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    due_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # What delivery adds per recipient (delivery.personalize): a copy each when any is set.
    track_opens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    list_unsubscribe: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # set when the retention period removed its MIME (message_contents row); metadata stays
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# A message in the queue, with the statuses written into the SQL rather than bound: a partial
# index (ix_messages_due) serves a query only when the query states the index's condition
# itself, which a bound parameter does not (SQLite; PostgreSQL's generic plans). Bound, the
# claim scanned and sorted the whole table, and grew slower with every message ever sent.
IN_QUEUE: Final = Message.status.in_(
    bindparam("queued_statuses", QUEUED_STATUSES, expanding=True, literal_execute=True)
)


class MessageContent(Base):
    """The raw MIME of a message, apart from the queue row so claims stay small."""

    __tablename__ = "message_contents"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class MessageTag(Base):
    """A tag of a message, one row each, so filters and per-tag stats use an index."""

    __tablename__ = "message_tags"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class MessageRecipient(Base):
    __tablename__ = "message_recipients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_reply: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    """Something that happened to a message or one of its recipients."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(320), default=None)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL"), default=None
    )
    smtp_code: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    # "hard" | "soft" on bounce events (see services.bounce_reports.BounceClass); else None
    bounce_class: Mapped[str | None] = mapped_column(String(4), default=None)
    # open / click / unsubscribe: who asked (the IP per MAILGATE_TRUSTED_PROXIES), the link
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    client_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)
    automated: Mapped[bool | None] = mapped_column(Boolean, default=None)  # a bot or prefetch
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """An address or a whole domain the account must not send to."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("account_id", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(320))  # lower-cased address, or a domain
    kind: Mapped[str] = mapped_column(String(8))  # "email" | "domain"
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmtpUser(Base):
    """A login for the SMTP relay, owned by one account.

    SMTP AUTH names no account, so ``username`` is unique across the whole deployment. Only an
    argon2 hash of the password is kept. An empty ``allowed_senders`` allows any sender; a
    custom rate limit is ``rate_limit_max`` messages per ``rate_limit_period`` seconds.
    """

    __tablename__ = "smtp_users"
    __table_args__ = (
        CheckConstraint(
            "(rate_limit_max IS NULL) = (rate_limit_period IS NULL)", name="rate_limit_pair"
        ),
        Index("ix_smtp_users_account_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_senders: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_limit_max: Mapped[int | None] = mapped_column(Integer, default=None)
    rate_limit_period: Mapped[int | None] = mapped_column(Integer, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IpAuthNetwork(Base):
    """A network whose clients may relay without SMTP AUTH, as its account.

    ``network`` is the normalised CIDR text. ``range_start``/``range_end`` are its first and
    last addresses as 32 hex digits, so containment and overlap are plain string comparisons
    on every backend. A network belongs to one account: overlaps across accounts are refused.
    """

    __tablename__ = "ip_auth_networks"
    __table_args__ = (
        Index("ix_ip_auth_networks_range", "version", "range_start", "range_end"),
        Index("ix_ip_auth_networks_account_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    network: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int] = mapped_column(Integer)
    range_start: Mapped[str] = mapped_column(String(32))
    range_end: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---- Issue 5 (engagement). Each block below is owned by one part of that work. ----

# -- templates --


class Template(Base):
    """An account's message template: Jinja2 (sandboxed) subject, HTML and text parts.

    ``public_id`` is unique per account, not globally: SMTP2GO callers choose their own ids.
    ``sample_data`` is what previews render with (SMTP2GO's ``template_variables``).
    """

    __tablename__ = "templates"
    __table_args__ = (
        UniqueConstraint("account_id", "public_id", name="uq_templates_account_public_id"),
        UniqueConstraint("account_id", "name", name="uq_templates_account_name"),
        Index("ix_templates_account_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    sample_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- webhooks --

WEBHOOK_PENDING = "pending"  # a delivery still to be sent (or retried)


class Webhook(Base):
    """An endpoint an account's events are POSTed to, signed (Standard Webhooks).

    ``flavour`` is the payload shape: ``smtp2go`` for webhooks made through ``/v3``, else
    ``native``. Secrets are kept encrypted; after a rotation the previous one signs too until
    ``previous_secret_expires_at``. ``failing_since``/``consecutive_failures`` count failed
    POSTs since the last success, for auto-disabling.
    """

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_account_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(255), default="")
    flavour: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """The outbox, and each webhook's delivery log: one row per (webhook, event).

    ``public_id`` is the ``webhook-id`` header, the same on every retry and replay. The
    payload is built once, at fan-out, so retries send the same bytes. Pending rows are
    claimed with a lease, as the message queue is; a message's rows go out in event order.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # "is an earlier event of this message still pending for this webhook?"
        Index(
            "ix_webhook_deliveries_order",
            "webhook_id",
            "message_id",
            "event_id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_log", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), default=None
    )
    message_id: Mapped[int | None] = mapped_column(Integer, default=None)  # ordering key only
    event_type: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=WEBHOOK_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    retry_until: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookFanoutCursor(Base):
    """Where the fan-out has read the events table to (one row, id 1).

    ``gaps`` are id ranges ``[low, high, first_seen]`` below ``last_event_id`` not seen yet: on
    PostgreSQL a lower id can commit after a higher one was read, so they are looked for again
    until ``webhook_gap_hold_seconds`` have passed (see webhooks.fanout).
    """

    __tablename__ = "webhook_fanout_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- tracking and unsubscribe --
# Columns only: Account.track_opens/track_clicks/transactional (defaults), the same choice
# resolved per Message (track_opens/track_clicks/list_unsubscribe), and on Event the
# user_agent/client_ip/url/automated of opens, clicks and unsubscribes.

# -- suppressions, activity, archive --

# Listings newest first per account (suppressions, the events feed), exact-recipient event
# filters, and the retention purge's scan for bodies not yet purged.
Index("ix_suppressions_account_id", Suppression.account_id, Suppression.id)
Index("ix_events_account_id", Event.account_id, Event.id)
Index("ix_events_account_recipient", Event.account_id, Event.recipient, Event.id)
Index(
    "ix_messages_unpurged",
    Message.created_at,
    sqlite_where=text("purged_at IS NULL"),
    postgresql_where=text("purged_at IS NULL"),
)

# -- stats --


class StatsHourly(Base):
    """Event counts per account and hour, rolled up from ``events`` (services.stats_rollup).

    One event adds to one row with ``tag == ""`` and ``sender == ""`` (every message), one
    row per tag of its message, and one ``sender`` row (the envelope sender, with bytes).
    The empty string and provider 0 stand for "none" so the primary key can take upserts.
    """

    __tablename__ = "stats_hourly"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    bounce_class: Mapped[str] = mapped_column(String(4), primary_key=True)
    provider_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class StatsRollupState(Base):
    """How far ``stats_hourly`` has rolled ``events`` up: every id up to ``rolled_through``.

    ``pending_through``/``pending_at`` (PostgreSQL): the highest id a pass saw and the
    database clock then; those ids are rolled up once no transaction of this database that
    began before then is still running, so an id committed late is never skipped.
    """

    __tablename__ = "stats_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rolled_through: Mapped[int] = mapped_column(BigInteger)
    pending_through: Mapped[int | None] = mapped_column(BigInteger, default=None)
    pending_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
