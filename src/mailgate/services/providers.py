"""Upstream SMTP providers: create, read, change, delete, enable, and test for real."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mailgate.config import Settings
from mailgate.delivery.transport import ProbeResult, TestMessage, probe
from mailgate.domain import (
    AuthMethod,
    ProviderStatus,
    QuotaRange,
    QuotaWindow,
    Security,
    SmtpEndpoint,
)
from mailgate.errors import Invalid, Issue, NotFound, SmtpError
from mailgate.i18n import N_, stored_message
from mailgate.security.secrets_box import SecretBox
from mailgate.services.changes import UNSET, Changes
from mailgate.store.models import Provider, utcnow
from mailgate.validation import check_email, check_hostname, check_no_control_chars

__all__ = [
    "UNSET",
    "ProviderChanges",
    "ProviderPage",
    "TestOutcome",
    "create_provider",
    "delete_provider",
    "endpoint_of",
    "get_default_provider",
    "get_provider",
    "list_providers",
    "provider_by_ref",
    "quotas_of",
    "reason_of",
    "set_enabled",
    "test_endpoint",
    "test_provider",
    "test_sender",
    "update_provider",
]

PUBLIC_ID_PREFIX: Final = "dprov_"


@dataclass(frozen=True)
class ProviderChanges(Changes):
    """Fields to set, in domain names. Anything left ``UNSET`` is not touched.

    ``password``/``oauth_refresh_token`` are plaintext here and encrypted before storage.
    ``quotas`` maps a window to a range, or to None to clear that window.
    """

    name: Any = UNSET
    driver: Any = UNSET
    host: Any = UNSET
    port: Any = UNSET
    security: Any = UNSET
    username: Any = UNSET
    password: Any = UNSET
    auth_method: Any = UNSET
    verify_tls: Any = UNSET
    oauth_email: Any = UNSET
    oauth_refresh_token: Any = UNSET
    from_email: Any = UNSET
    from_name: Any = UNSET
    reply_to_email: Any = UNSET
    reply_to_name: Any = UNSET
    is_default: Any = UNSET
    is_enabled: Any = UNSET
    quotas: Any = UNSET
    percentage: Any = UNSET
    tracking_domain: Any = UNSET
    variables: Any = UNSET


REQUIRED_ON_CREATE: Final = ("name", "host", "port", "security")
_EMAILS: Final = ("from_email", "reply_to_email", "oauth_email")
_TEXTS: Final = ("name", "from_name", "reply_to_name", "username")


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    """Re-check what every surface already checked; the CLI and tests call services directly."""
    issues: list[Issue] = []

    def check(name: str, func: Any) -> None:
        value = values.get(name)
        if value is None:
            return
        try:
            values[name] = func(value)
        except ValueError as exc:
            issues.append(Issue(name, str(exc)))

    check("host", check_hostname)
    check("tracking_domain", check_hostname)
    for name in _EMAILS:
        check(name, check_email)
    for name in _TEXTS:
        check(name, check_no_control_chars)
    if "name" in values and not (values["name"] or "").strip():
        issues.append(Issue("name", N_("Must not be empty."), "required"))
    port = values.get("port")
    if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
        issues.append(Issue("port", N_("Must be a whole number from 1 to 65535.")))
    percentage = values.get("percentage")
    if percentage is not None and not 0 <= percentage <= 100:
        issues.append(Issue("percentage", N_("Must be a whole number from 0 to 100.")))
    for window, quota in (values.get("quotas") or {}).items():
        if quota is not None and not 0 < quota.min <= quota.max:
            issues.append(
                Issue(f"quotas.{QuotaWindow(window).value}", N_("Minimum must not exceed maximum."))
            )
    if issues:
        raise Invalid(issues)
    return values


def quotas_of(provider: Provider) -> dict[QuotaWindow, QuotaRange | None]:
    stored = provider.quotas or {}
    result: dict[QuotaWindow, QuotaRange | None] = {}
    for window in QuotaWindow:
        raw = stored.get(window.value)
        result[window] = QuotaRange(raw["min"], raw["max"]) if raw else None
    return result


def _apply(provider: Provider, values: Mapping[str, Any], box: SecretBox) -> None:
    for name, value in values.items():
        if name == "password":
            provider.password_encrypted = box.encrypt_optional(value or None)
        elif name == "oauth_refresh_token":
            provider.oauth_refresh_token_encrypted = box.encrypt_optional(value or None)
        elif name == "quotas":
            merged = dict(provider.quotas or {})
            for window, quota in value.items():
                key = QuotaWindow(window).value
                if quota is None:
                    merged.pop(key, None)
                else:
                    merged[key] = {"min": quota.min, "max": quota.max}
            provider.quotas = merged
        elif name in ("security", "auth_method"):
            setattr(provider, name, str(value))
        elif name == "is_enabled":
            provider.is_enabled = bool(value)
            if not value:
                provider.status = ProviderStatus.INACTIVE.value
            elif provider.status == ProviderStatus.INACTIVE.value:
                provider.status = ProviderStatus.ACTIVE.value
        else:
            setattr(provider, name, value)


async def _clear_default(session: AsyncSession, account_id: int, keep: int | None) -> None:
    query = update(Provider).where(Provider.account_id == account_id, Provider.is_default)
    if keep is not None:
        query = query.where(Provider.id != keep)
    await session.execute(query.values(is_default=False))


async def create_provider(
    *, session: AsyncSession, box: SecretBox, account_id: int, changes: ProviderChanges
) -> Provider:
    values = _validated(changes.given())
    missing = [name for name in REQUIRED_ON_CREATE if values.get(name) is None]
    if missing:
        raise Invalid([Issue(name, N_("This field is required."), "required") for name in missing])
    provider = Provider(
        public_id=PUBLIC_ID_PREFIX + secrets.token_hex(12),
        account_id=account_id,
        driver="smtp",
        auth_method=AuthMethod.AUTO.value,
        verify_tls=True,
        is_default=False,
        is_enabled=True,
        status=ProviderStatus.ACTIVE.value,
        quotas={},
        percentage=100,
        variables={},
    )
    _apply(provider, values, box)
    if provider.is_default:
        await _clear_default(session, account_id, keep=None)
    session.add(provider)
    await session.commit()
    return provider


async def update_provider(
    *, session: AsyncSession, box: SecretBox, provider: Provider, changes: ProviderChanges
) -> Provider:
    values = _validated(changes.given())
    if values.get("is_default"):
        await _clear_default(session, provider.account_id, keep=provider.id)
    _apply(provider, values, box)
    provider.updated_at = utcnow()
    await session.commit()
    return provider


async def set_enabled(*, session: AsyncSession, provider: Provider, enabled: bool) -> Provider:
    provider.is_enabled = enabled
    provider.status = (ProviderStatus.ACTIVE if enabled else ProviderStatus.INACTIVE).value
    provider.status_reason = None
    provider.updated_at = utcnow()
    await session.commit()
    return provider


async def delete_provider(*, session: AsyncSession, provider: Provider) -> None:
    await session.delete(provider)
    await session.commit()


async def get_provider(*, session: AsyncSession, account_id: int, ref: str | int) -> Provider:
    """Look a provider up by numeric id or public id, within one account."""
    return await session.run_sync(provider_by_ref, account_id=account_id, ref=ref)


def provider_by_ref(session: Session, *, account_id: int, ref: str | int) -> Provider:
    """:func:`get_provider` inside a synchronous transaction (:meth:`Database.write`)."""
    query = select(Provider).where(Provider.account_id == account_id)
    text = str(ref).strip()
    if text.isdigit() and len(text) < 19:
        query = query.where(Provider.id == int(text))
    elif text.startswith(PUBLIC_ID_PREFIX):
        query = query.where(Provider.public_id == text)
    else:
        raise NotFound(N_("No provider with id {id}."), id=text[:64])
    provider = session.execute(query).scalar_one_or_none()
    if provider is None:
        raise NotFound(N_("No provider with id {id}."), id=text[:64])
    return provider


async def public_ids_of(
    *, session: AsyncSession, account_id: int, ids: Iterable[int | None]
) -> dict[int, str]:
    """Public ids of the given provider row ids that still exist in the account (one query)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(Provider.id, Provider.public_id).where(
        Provider.account_id == account_id, Provider.id.in_(wanted)
    )
    return {row_id: public_id for row_id, public_id in await session.execute(query)}


async def get_default_provider(*, session: AsyncSession, account_id: int) -> Provider | None:
    query = select(Provider).where(Provider.account_id == account_id, Provider.is_default)
    return (await session.execute(query)).scalar_one_or_none()


@dataclass(frozen=True)
class ProviderPage:
    items: list[Provider]
    total: int
    has_more: bool


async def list_providers(
    *,
    session: AsyncSession,
    account_id: int,
    limit: int,
    offset: int = 0,
    after_id: int | None = None,
    status: ProviderStatus | None = None,
) -> ProviderPage:
    """Providers in creation order; page by ``offset`` or by ``after_id`` (a cursor)."""
    base = select(Provider).where(Provider.account_id == account_id)
    if status is not None:
        base = base.where(Provider.status == status.value)
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    query = base.order_by(Provider.id)
    if after_id is not None:
        query = query.where(Provider.id > after_id)
    rows = list((await session.execute(query.offset(offset).limit(limit + 1))).scalars())
    return ProviderPage(items=rows[:limit], total=total, has_more=len(rows) > limit)


def endpoint_of(provider: Provider, box: SecretBox) -> SmtpEndpoint:
    return SmtpEndpoint(
        host=provider.host,
        port=provider.port,
        security=Security(provider.security),
        username=provider.username or None,
        password=box.decrypt_optional(provider.password_encrypted),
        auth_method=AuthMethod(provider.auth_method),
        verify_tls=provider.verify_tls,
    )


def test_sender(*candidates: str | None, fallback: str) -> str:
    """The first candidate that is a valid address (a user name often is one), else ``fallback``."""
    for candidate in candidates:
        if candidate:
            try:
                return check_email(candidate)
            except ValueError:
                continue
    return fallback


@dataclass(frozen=True)
class TestOutcome:
    """What a connection test found. ``error`` is None on success."""

    tested_at: datetime
    latency_ms: int
    error: SmtpError | None
    result: ProbeResult | None

    @property
    def success(self) -> bool:
        return self.error is None


def reason_of(error: SmtpError) -> str:
    """An SMTP failure as text to store (on a provider, a test job): its msgid and params,
    for each reader to see in their language (:func:`mailgate.i18n.translate_stored`)."""
    params = {k: v[:1000] if isinstance(v, str) else v for k, v in error.params.items()}
    return stored_message(error.message, params)


async def test_endpoint(
    endpoint: SmtpEndpoint, *, settings: Settings, message: TestMessage | None = None
) -> TestOutcome:
    """Connect, EHLO, TLS, AUTH, and (with ``message``) deliver it; never raises SmtpError."""
    started = time.monotonic()
    tested_at = utcnow()
    try:
        result = await probe(
            endpoint,
            timeout=settings.smtp_timeout,
            ca_bundle=settings.smtp_ca_bundle,
            helo_name=settings.smtp_helo_name,
            message=message,
        )
    except SmtpError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return TestOutcome(tested_at=tested_at, latency_ms=elapsed, error=exc, result=None)
    return TestOutcome(tested_at=tested_at, latency_ms=result.latency_ms, error=None, result=result)


async def test_provider(
    *,
    session: AsyncSession,
    box: SecretBox,
    settings: Settings,
    provider: Provider,
    recipient: str | None = None,
    subject: str = "Mailgate test message",
) -> TestOutcome:
    """Test a stored provider for real and record the outcome on it.

    With ``recipient`` a real test message is delivered; without, the session stops after AUTH.
    """
    message = None
    if recipient is not None:
        message = TestMessage(
            sender=test_sender(
                provider.from_email, provider.username, fallback=settings.root_email
            ),
            recipient=recipient,
            subject=subject,
            text=(
                "This is a test message from Mailgate.\n\n"
                f'It was delivered through the provider "{provider.name}" '
                f"({provider.host}:{provider.port}).\n"
            ),
            sender_name=provider.from_name,
            reply_to=provider.reply_to_email,
        )
    endpoint = endpoint_of(provider, box)
    await session.commit()  # end the read transaction: no connection is held while we talk SMTP
    outcome = await test_endpoint(endpoint, settings=settings, message=message)
    provider.last_tested_at = outcome.tested_at
    if outcome.error is None:
        if provider.is_enabled:
            provider.status = ProviderStatus.ACTIVE.value
        provider.status_reason = None
    else:
        if provider.is_enabled:
            provider.status = ProviderStatus.ERROR.value
        provider.status_reason = reason_of(outcome.error)
    await session.commit()
    return outcome
