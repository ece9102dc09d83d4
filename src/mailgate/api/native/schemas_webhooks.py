"""Native ``/api/v1/webhooks`` request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import HeaderText, StrictModel
from mailgate.api.native.schemas import Meta, Pagination
from mailgate.domain import EventType
from mailgate.webhooks.targets import MAX_URL_LENGTH

Url = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Events = Annotated[list[EventName], Field(min_length=1, max_length=2 * len(EventType))]


class WebhookCreate(StrictModel):
    url: Url = Field(description="http(s) URL; not on a private address (unless allowed).")
    events: Events = Field(
        description="Event types to receive: " + ", ".join(e.value for e in EventType) + "."
    )
    description: HeaderText | None = None
    enabled: bool = True


class WebhookUpdate(StrictModel):
    url: Url | None = None
    events: Events | None = None
    description: HeaderText | None = None
    enabled: bool | None = None


class SecretRotation(BaseModel):
    previous_secret_valid_until: str | None


class WebhookItem(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    payload_format: Literal["native", "smtp2go"]
    consecutive_failures: int
    failing_since: str | None
    last_success_at: str | None
    last_failure_at: str | None
    secret_rotation: SecretRotation
    created_at: str
    updated_at: str


class WebhookWithSecret(WebhookItem):
    secret: str | None = Field(
        description="whsec_... signing secret: shown now, never again (null when an "
        "idempotent request is replayed)."
    )


class WebhookEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: WebhookItem


class WebhookWithSecretEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: WebhookWithSecret


class WebhookListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[WebhookItem]
    pagination: Pagination


class WebhookDeleted(BaseModel):
    deleted: bool
    id: str


class WebhookDeletedEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: WebhookDeleted


class DeliveryItem(BaseModel):
    id: str = Field(description="The webhook-id header: the same on every retry and replay.")
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: str | None
    created_at: str
    payload: dict[str, Any]


class DeliveryEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: DeliveryItem


class DeliveryListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[DeliveryItem]
    pagination: Pagination
