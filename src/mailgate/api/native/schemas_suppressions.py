"""Native ``/api/v1/suppressions`` request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import StrictModel
from mailgate.api.native.schemas import Meta, Pagination

Value = Annotated[str, StringConstraints(min_length=1, max_length=320)]
Detail = Annotated[str, StringConstraints(max_length=1000)]
Reason = Literal["manual", "hard_bounce", "complaint", "unsubscribe"]


class SuppressionCreate(StrictModel):
    """Give ``email`` or ``domain`` (a domain suppresses every address at it)."""

    email: Value | None = None
    domain: Value | None = None
    reason: Reason = Field(default="manual")
    detail: Detail | None = Field(default=None, description="Why, for people reading the list.")


class SuppressionItem(BaseModel):
    id: str
    value: str
    kind: Literal["email", "domain"]
    reason: str
    detail: str | None
    created_at: str


class SuppressionEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: SuppressionItem


class SuppressionListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[SuppressionItem]
    pagination: Pagination
