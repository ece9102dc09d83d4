"""What the native and SMTP2GO webhook routes share: the operator's webhook settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from mailgate.api.deps import context_of
from mailgate.services.webhooks import WebhookSettings

__all__ = ["WebhookSettingsDep", "webhook_settings"]


async def webhook_settings(request: Request) -> WebhookSettings:
    ctx = context_of(request)
    settings = ctx.settings
    return WebhookSettings(
        box=ctx.box,
        allow_private=settings.webhook_allow_private,
        secret_overlap=timedelta(hours=settings.webhook_secret_overlap_hours),
        retry_for=timedelta(hours=settings.webhook_retry_hours),
    )


WebhookSettingsDep = Annotated[WebhookSettings, Depends(webhook_settings)]
