"""Native suppressions <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from mailgate.api import fields
from mailgate.api.fields import iso
from mailgate.api.native.schemas_suppressions import SuppressionCreate
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services.suppressions import SuppressionKind, SuppressionReason, public_id
from mailgate.store.models import Suppression

CURSOR: Final = "sp"


def value_of(body: SuppressionCreate) -> tuple[str, str]:
    """The value to suppress and the request field it came in (which is also the kind it
    must be): exactly one of the two."""
    given = [(name, getattr(body, name)) for name in ("email", "domain")]
    sent = [(value, name) for name, value in given if value is not None]
    if len(sent) != 1:
        message = N_("Give either email or domain.")
        raise Invalid([Issue(name, message, "required") for name, _ in given])
    return sent[0]


def suppression_out(row: Suppression) -> dict[str, Any]:
    return {
        "id": public_id(row),
        "value": row.value,
        "kind": row.kind,
        "reason": row.reason,
        "detail": row.detail,
        "created_at": iso(row.created_at),
    }


def kind_filter(value: str | None) -> SuppressionKind | None:
    if value is None:
        return None
    kinds = fields.parse_choices(SuppressionKind, [value], "kind")
    if len(kinds) != 1:
        expected = ", ".join(k.value for k in SuppressionKind)
        raise Invalid.field(
            "kind", N_("Must be one of: {expected}."), "invalid_choice", expected=expected
        )
    return kinds[0]


def reason_filter(values: Sequence[str]) -> list[SuppressionReason]:
    """``reason=manual&reason=complaint`` or ``reason=manual,complaint``."""
    return fields.parse_choices(SuppressionReason, values, "reason")


def encode_cursor(last_id: int) -> str:
    return fields.encode_cursor(CURSOR, last_id)


def decode_cursor(cursor: str) -> int:
    return fields.decode_cursor(CURSOR, cursor, "cursor")
