"""SMTP2GO ``/webhook/add|edit|remove|view`` bodies, in SMTP2GO's field names. ``null`` means
"not given", as the official clients send every key."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.smtp2go.schemas import Smtp2goRequest
from mailgate.webhooks.targets import MAX_URL_LENGTH

Url = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH)]
Name = Annotated[str, StringConstraints(max_length=64)]
ShortText = Annotated[str, StringConstraints(max_length=255)]
WebhookRef = Annotated[int, Field(ge=1)] | Annotated[str, StringConstraints(max_length=64)]


class WebhookLookup(Smtp2goRequest):
    """``/view`` (optional) and ``/remove`` (required): the webhook, by SMTP2GO's numeric
    ``id`` (also as ``webhook_id``) or Mailgate's ``whk_`` id."""

    id: WebhookRef | None = None
    webhook_id: WebhookRef | None = None


class WebhookRequest(WebhookLookup):
    """``/add`` (``url`` required; no ``events``: every email event) and ``/edit``."""

    url: Url | None = None
    events: Annotated[list[Name], Field(max_length=20)] | None = None
    description: ShortText | None = Field(default=None, description="Mailgate's own.")
    enabled: bool | None = Field(default=None, description="Mailgate's own.")
    # SMTP2GO options Mailgate does not offer: accepted when empty or left off.
    sms_events: Annotated[list[Name], Field(max_length=20)] | None = None
    usernames: Annotated[list[ShortText], Field(max_length=100)] | None = None
    headers: Annotated[list[ShortText], Field(max_length=20)] | None = None
    output: Literal["json"] | None = None
    output_format: Literal["json"] | None = None


class WebhookOut(BaseModel):
    id: int
    webhook_id: str
    url: str
    events: list[str]
    sms_events: list[str]
    usernames: list[str]
    headers: list[str]
    output_format: Literal["json"]
    description: str
    enabled: bool
    disabled_reason: str | None


class WebhookAdded(WebhookOut):
    secret: str | None = Field(description="whsec_... signing secret: shown now, never again.")


class WebhookRemoved(BaseModel):
    id: int
    webhook_id: str


class WebhookViewEnvelope(BaseModel):
    request_id: str
    data: list[WebhookOut]


class WebhookAddedEnvelope(BaseModel):
    request_id: str
    data: WebhookAdded


class WebhookEnvelope(BaseModel):
    request_id: str
    data: WebhookOut


class WebhookRemovedEnvelope(BaseModel):
    request_id: str
    data: WebhookRemoved
