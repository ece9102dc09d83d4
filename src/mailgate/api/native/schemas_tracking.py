"""Native ``/api/v1/tracking`` request and response models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mailgate.api.fields import StrictModel
from mailgate.api.native.schemas import Meta


class TrackingUpdate(StrictModel):
    """Only the fields given change; ``null`` is refused (say true or false)."""

    track_opens: bool | None = Field(default=None, description="Add an open pixel to HTML mail.")
    track_clicks: bool | None = Field(
        default=None, description="Send HTML links through the click redirect."
    )
    transactional: bool | None = Field(
        default=None,
        description="true: mail is transactional-only unless it says otherwise (no "
        "List-Unsubscribe). false (the default): every message not marked transactional gets "
        "List-Unsubscribe and List-Unsubscribe-Post (RFC 8058).",
    )


class TrackingOut(BaseModel):
    track_opens: bool
    track_clicks: bool
    transactional: bool
    links_base_url: str


class TrackingEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: TrackingOut
