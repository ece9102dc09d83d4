"""MailSage compatibility surface: ``/api/v1/smtp/configs`` (SMTP Management document).

Keys travel as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from fastapi import APIRouter

from mailgate.api.mailsage.errors import render_error
from mailgate.api.mailsage.routes import configs
from mailgate.api.surface import Surface

PREFIX = "/api/v1/smtp/configs"

router = APIRouter(prefix="/api/v1/smtp")
router.include_router(configs.router)

surface = Surface(name="mailsage", prefix=PREFIX, router=router, render_error=render_error)
