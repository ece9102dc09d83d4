"""Field types and helpers shared by every surface's schemas (validation lives in one place)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.validation import check_email, check_hostname, check_no_control_chars

__all__ = [
    "EmailAddress",
    "HeaderText",
    "Hostname",
    "LenientModel",
    "RequiredText",
    "StrictModel",
    "decode_cursor",
    "encode_cursor",
    "iso",
    "parse_choices",
]


class StrictModel(BaseModel):
    """Request bodies: unknown fields and wrong JSON types are errors, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class LenientModel(BaseModel):
    """Request bodies of vendors whose real clients send loosely typed values."""

    model_config = ConfigDict(extra="forbid")


Hostname = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(check_hostname)
]
EmailAddress = Annotated[str, StringConstraints(max_length=255), AfterValidator(check_email)]
HeaderText = Annotated[
    str, StringConstraints(max_length=255), AfterValidator(check_no_control_chars)
]
RequiredText = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(check_no_control_chars)
]


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, seconds precision: ``2026-05-25T02:18:00Z``."""
    if value is None:
        return None
    return _iso_second(value.replace(microsecond=0))


@lru_cache(maxsize=256)
def _iso_second(value: datetime) -> str:
    """Formatted once per second (and zone: equal instants give the same text anyway): each
    answer about new mail names the same few seconds, and formatting cost 5 us a time."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_cursor(kind: str, last_id: int) -> str:
    """An opaque page token: ``kind`` and the last row id of the page."""
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, token: str, field: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        found, _, number = raw.partition(":")
        if found != kind or not number.isdigit() or len(number) > 18:
            raise ValueError(token)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid.field(field, N_("The cursor is not valid.")) from exc


Choice = TypeVar("Choice", bound=StrEnum)


def parse_choices(kind: type[Choice], values: Iterable[str], field: str) -> list[Choice]:
    """Query values of a closed vocabulary (``a&b`` or ``a,b``), in order, without repeats."""
    wanted: list[Choice] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            try:
                wanted.append(kind(name))
            except ValueError as exc:
                raise Invalid.field(
                    field,
                    N_("Must be one of: {expected}."),
                    "invalid_choice",
                    expected=", ".join(choice.value for choice in kind),
                ) from exc
    return list(dict.fromkeys(wanted))
