"""Native ``/api/v1/events`` response models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from mailgate.api.native.schemas import Meta, Pagination


class EventItem(BaseModel):
    id: str
    type: str
    message_id: str | None
    recipient: str | None
    provider_id: str | None
    smtp_code: int | None
    detail: str | None
    bounce_class: Literal["hard", "soft"] | None
    created_at: str


class EventListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[EventItem]
    pagination: Pagination
