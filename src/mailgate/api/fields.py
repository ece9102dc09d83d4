"""Field types and helpers shared by every surface's schemas (validation lives in one place)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from mailgate.validation import check_email, check_hostname, check_no_control_chars

__all__ = [
    "EmailAddress",
    "HeaderText",
    "Hostname",
    "LenientModel",
    "RequiredText",
    "StrictModel",
    "iso",
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
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
