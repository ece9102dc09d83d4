"""SMTP users: the logins of the relay listener, per account.

Passwords are stored only as argon2 hashes; a generated password is handed back once, in the
:class:`SavedSmtpUser` of the call that made it, and never again. The listener needs three
things from here: :func:`authenticate_smtp_user`, :func:`sender_allowed` and the user's
:class:`~mailgate.domain.SendingRateLimit` (on the :class:`SmtpPrincipal`).

Functions that hash end the caller's transaction first (``session.commit()``), so no database
connection is held during the tens of milliseconds a hash takes; they expect sessions made
with ``expire_on_commit=False``, as :class:`mailgate.store.db.Database` makes them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.domain import SendingRateLimit
from mailgate.errors import Conflict, Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.security.passwords import generate_password, hash_password, verify_password
from mailgate.services.changes import UNSET, Changes
from mailgate.store.models import SmtpUser, utcnow
from mailgate.validation import check_no_control_chars, check_sender_rule

__all__ = [
    "MAX_ALLOWED_SENDERS",
    "MAX_PERIOD_SECONDS",
    "MAX_RATE_LIMIT",
    "PASSWORD_LENGTH",
    "USERNAME_LENGTH",
    "SavedSmtpUser",
    "SmtpPrincipal",
    "SmtpUserChanges",
    "SmtpUserPage",
    "authenticate_smtp_user",
    "create_smtp_user",
    "delete_smtp_user",
    "find_smtp_user",
    "get_smtp_user",
    "list_smtp_users",
    "rate_limit_of",
    "sender_allowed",
    "update_smtp_user",
]

PUBLIC_ID_PREFIX: Final = "smtpu_"
USERNAME_LENGTH: Final = (5, 100)  # SMTP2GO's bounds
PASSWORD_LENGTH: Final = (12, 200)
MAX_ALLOWED_SENDERS: Final = 100
MAX_RATE_LIMIT: Final = 2_147_483_647
MAX_PERIOD_SECONDS: Final = 366 * 86400
# Longer than any real name or password: refused before any hashing work is done.
_MAX_PRESENTED: Final = 1024
# ``last_used_at`` is written at most this often per user: a login must not cost a write.
LAST_USED_RESOLUTION: Final = timedelta(seconds=60)

_USERNAME: Final = re.compile(r"^[^\s\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class SmtpUserChanges(Changes):
    """Fields to set, in domain names; ``UNSET`` ones are not touched.

    ``password`` is plaintext here and only its hash is stored. ``generate_password=True``
    asks for a new random one (returned once). ``description``, ``allowed_senders`` and
    ``rate_limit`` accept ``None`` to clear (empty text, any sender, no custom limit).
    """

    username: Any = UNSET
    password: Any = UNSET
    generate_password: Any = UNSET
    description: Any = UNSET
    is_enabled: Any = UNSET
    allowed_senders: Any = UNSET
    rate_limit: Any = UNSET


@dataclass(frozen=True)
class SavedSmtpUser:
    """A user just written, and the password generated for it by this call, if any."""

    user: SmtpUser
    generated_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SmtpPrincipal:
    """Who logged in to the relay: the account to send as, and the user's own rules."""

    account_id: int
    user_id: int
    username: str
    allowed_senders: tuple[str, ...]
    rate_limit: SendingRateLimit | None


@dataclass(frozen=True)
class SmtpUserPage:
    items: list[SmtpUser]
    has_more: bool


def _check_username(value: str) -> str:
    low, high = USERNAME_LENGTH
    if not low <= len(value) <= high:
        raise ValueError(N_("Must be 5 to 100 characters long."))
    if not _USERNAME.match(value):
        raise ValueError(N_("Must not contain spaces or control characters."))
    return value


def _check_password(value: str) -> str:
    low, high = PASSWORD_LENGTH
    if not low <= len(value) <= high:
        raise ValueError(N_("Must be 12 to 200 characters long."))
    return check_no_control_chars(value)


def _check_allowed_senders(values: Sequence[str], issues: list[Issue]) -> list[str]:
    if len(values) > MAX_ALLOWED_SENDERS:
        issues.append(
            Issue(
                "allowed_senders",
                N_("Must have at most {max_length} items."),
                "too_long",
                {"max_length": MAX_ALLOWED_SENDERS},
            )
        )
        return []
    rules: list[str] = []
    for index, value in enumerate(values):
        try:
            rules.append(check_sender_rule(value))
        except ValueError as exc:
            issues.append(Issue(f"allowed_senders.{index}", str(exc)))
    unique: dict[str, str] = {}
    for rule in rules:  # matched ignoring case, so kept once ignoring case
        unique.setdefault(rule.casefold(), rule)
    return list(unique.values())


def _check_rate_limit(limit: SendingRateLimit, issues: list[Issue]) -> None:
    if not 1 <= limit.max_messages <= MAX_RATE_LIMIT:
        issues.append(
            Issue(
                "rate_limit.max_messages",
                N_("Must be a whole number from 1 to {max}."),
                "out_of_range",
                {"max": MAX_RATE_LIMIT},
            )
        )
    if not 1 <= limit.period_seconds <= MAX_PERIOD_SECONDS:
        issues.append(
            Issue(
                "rate_limit.period_seconds",
                N_("Must be from 1 second to 366 days."),
                "out_of_range",
            )
        )


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    """Re-check what every surface already checked; the CLI and tests call services directly."""
    issues: list[Issue] = []
    checks = {
        "username": _check_username,
        "password": _check_password,
        "description": check_no_control_chars,
    }
    for name, check in checks.items():
        value = values.get(name)
        if value is None:
            continue
        try:
            values[name] = check(value)
        except ValueError as exc:
            issues.append(Issue(name, str(exc)))
    if values.get("description") is not None and len(values["description"]) > 255:
        issues.append(
            Issue(
                "description",
                N_("Must be at most {max_length} characters long."),
                "too_long",
                {"max_length": 255},
            )
        )
    if "password" in values and values.get("generate_password"):
        issues.append(
            Issue("generate_password", N_("Give a password or ask for one, not both."), "conflict")
        )
    for name in ("username", "password", "is_enabled"):
        if name in values and values[name] is None:
            issues.append(Issue(name, N_("Must not be null."), "invalid_type"))
    if values.get("allowed_senders") is not None:
        values["allowed_senders"] = _check_allowed_senders(values["allowed_senders"], issues)
    if values.get("rate_limit") is not None:
        _check_rate_limit(values["rate_limit"], issues)
    if issues:
        raise Invalid(issues)
    return values


async def _ensure_username_free(
    session: AsyncSession, username: str, keep: int | None = None
) -> None:
    query = select(SmtpUser.id).where(SmtpUser.username == username)
    if keep is not None:
        query = query.where(SmtpUser.id != keep)
    if (await session.execute(query.limit(1))).first() is not None:
        raise _taken(username)


def _taken(username: str) -> Conflict:
    return Conflict(N_("The SMTP user name {username} is taken."), username=username)


def _apply(user: SmtpUser, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if name in ("password", "generate_password"):
            continue  # hashed by the caller
        if name == "description":
            user.description = value or ""
        elif name == "allowed_senders":
            user.allowed_senders = list(value or [])
        elif name == "rate_limit":
            user.rate_limit_max = value.max_messages if value else None
            user.rate_limit_period = value.period_seconds if value else None
        elif name == "is_enabled":
            user.is_enabled = bool(value)
        else:
            setattr(user, name, value)


async def _commit(session: AsyncSession, username: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:  # another request took the name between check and write
        await session.rollback()
        raise _taken(username) from exc


async def create_smtp_user(
    *, session: AsyncSession, account_id: int, changes: SmtpUserChanges
) -> SavedSmtpUser:
    """A new user. Without a password one is generated and returned (once)."""
    values = _validated(changes.given())
    username = values.get("username")
    if username is None:
        raise Invalid.field("username", N_("This field is required."), "required")
    await _ensure_username_free(session, username)
    generated = None if values.get("password") else generate_password()
    await session.commit()  # hold no connection while hashing
    password_hash = await hash_password(values.get("password") or generated or "")
    user = SmtpUser(
        public_id=PUBLIC_ID_PREFIX + secrets.token_hex(12),
        account_id=account_id,
        password_hash=password_hash,
        description="",
        is_enabled=True,
        allowed_senders=[],
    )
    _apply(user, values)
    session.add(user)
    await _commit(session, username)
    return SavedSmtpUser(user, generated)


async def update_smtp_user(
    *, session: AsyncSession, user: SmtpUser, changes: SmtpUserChanges
) -> SavedSmtpUser:
    """Change the fields given; ``generate_password=True`` replaces the password with a new
    random one, returned (once)."""
    values = _validated(changes.given())
    if values.get("username") is not None and values["username"] != user.username:
        await _ensure_username_free(session, values["username"], keep=user.id)
    generated = generate_password() if values.get("generate_password") else None
    new_password = values.get("password") or generated
    if new_password:
        await session.commit()  # hold no connection while hashing
        user.password_hash = await hash_password(new_password)
    _apply(user, values)
    user.updated_at = utcnow()
    await _commit(session, user.username)
    return SavedSmtpUser(user, generated)


async def delete_smtp_user(*, session: AsyncSession, user: SmtpUser) -> None:
    await session.delete(user)
    await session.commit()


def _not_found(ref: str) -> NotFound:
    return NotFound(N_("No SMTP user with id {id}."), id=ref[:64])


async def get_smtp_user(*, session: AsyncSession, account_id: int, ref: str) -> SmtpUser:
    """A user of this account by its public id."""
    text = ref.strip()
    if not text.startswith(PUBLIC_ID_PREFIX):
        raise _not_found(text)
    query = select(SmtpUser).where(SmtpUser.account_id == account_id, SmtpUser.public_id == text)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        raise _not_found(text)
    return user


async def find_smtp_user(*, session: AsyncSession, account_id: int, username: str) -> SmtpUser:
    """A user of this account by its user name (another account's user is not found)."""
    query = select(SmtpUser).where(SmtpUser.account_id == account_id, SmtpUser.username == username)
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        raise NotFound(N_("No SMTP user named {username}."), username=username[:100])
    return user


async def list_smtp_users(
    *, session: AsyncSession, account_id: int, limit: int | None, after_id: int | None = None
) -> SmtpUserPage:
    """Users in creation order; ``after_id`` is a cursor; ``limit=None`` returns them all."""
    query = select(SmtpUser).where(SmtpUser.account_id == account_id).order_by(SmtpUser.id)
    if after_id is not None:
        query = query.where(SmtpUser.id > after_id)
    if limit is None:
        return SmtpUserPage(items=list((await session.execute(query)).scalars()), has_more=False)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return SmtpUserPage(items=rows[:limit], has_more=len(rows) > limit)


def rate_limit_of(user: SmtpUser) -> SendingRateLimit | None:
    if user.rate_limit_max is None or user.rate_limit_period is None:
        return None
    return SendingRateLimit(user.rate_limit_max, user.rate_limit_period)


async def authenticate_smtp_user(
    *, session: AsyncSession, username: str, password: str
) -> SmtpPrincipal | None:
    """The principal for an SMTP AUTH, or None: unknown user, wrong password or disabled user
    alike, in about the same time (an unknown user still costs one hash check).

    A hash made with older parameters is replaced on success. Ends the caller's transaction.
    """
    if not username or not password or max(len(username), len(password)) > _MAX_PRESENTED:
        return None
    query = select(SmtpUser).where(SmtpUser.username == username)
    user = (await session.execute(query)).scalar_one_or_none()
    stored = user.password_hash if user is not None else None
    await session.commit()  # hold no connection while verifying
    verified = await verify_password(stored, password)
    if user is None or not verified.ok or not user.is_enabled:
        return None
    now = utcnow()
    values: dict[str, Any] = {}
    if verified.new_hash is not None:
        values["password_hash"] = verified.new_hash
    if user.last_used_at is None or now - user.last_used_at >= LAST_USED_RESOLUTION:
        values["last_used_at"] = now
    if values:
        # Keep updated_at: it tells when the user was last changed, not when it logged in.
        values["updated_at"] = SmtpUser.updated_at
        await session.execute(update(SmtpUser).where(SmtpUser.id == user.id).values(**values))
        await session.commit()
    return SmtpPrincipal(
        account_id=user.account_id,
        user_id=user.id,
        username=user.username,
        allowed_senders=tuple(user.allowed_senders or ()),
        rate_limit=rate_limit_of(user),
    )


def sender_allowed(user: SmtpPrincipal | SmtpUser, address: str) -> bool:
    """May ``user`` send as ``address`` (an envelope or header sender)? An empty list of
    allowed senders allows any; otherwise the address must be listed, or its domain.
    Comparison ignores case; a listed domain does not cover its subdomains."""
    rules = user.allowed_senders
    if not rules:
        return True
    candidate = address.strip().casefold()
    local, at, domain = candidate.rpartition("@")
    if not at or not local or not domain:
        return False
    for rule in rules:
        wanted = rule.casefold()
        if "@" in wanted and wanted == candidate:
            return True
        if "@" not in wanted and wanted == domain:
            return True
    return False
