"""Back Office compatibility surface: ``/api/v2/mail/providers`` (SMTP service providers).

Keys travel as ``Authorization: Bearer <token>`` (``X-API-Key`` works too);
``accept-language`` picks the language of error messages.
"""

from mailgate.api.backoffice.errors import render_error
from mailgate.api.backoffice.routes import providers
from mailgate.api.surface import Surface

PREFIX = "/api/v2/mail/providers"

surface = Surface(
    name="backoffice",
    prefix=PREFIX,
    mount="/api/v2/mail",
    routers=(providers.router,),
    render_error=render_error,
)
