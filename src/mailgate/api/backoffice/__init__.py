"""Back Office compatibility surface: ``/api/v2/mail/providers`` (SMTP service providers).

Keys travel as ``Authorization: Bearer <token>`` (``X-API-Key`` works too);
``accept-language`` picks the language of error messages.
"""

from fastapi import APIRouter

from mailgate.api.backoffice.errors import render_error
from mailgate.api.backoffice.routes import providers
from mailgate.api.surface import Surface

PREFIX = "/api/v2/mail/providers"

router = APIRouter(prefix="/api/v2/mail")
router.include_router(providers.router)

surface = Surface(name="backoffice", prefix=PREFIX, router=router, render_error=render_error)
