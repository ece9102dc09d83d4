"""MailSage compatibility surface: ``/api/v1/smtp/configs`` (SMTP Management document).

Keys travel as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from mailgate.api.mailsage.errors import render_error
from mailgate.api.mailsage.routes import configs
from mailgate.api.surface import Surface

PREFIX = "/api/v1/smtp/configs"

surface = Surface(
    name="mailsage",
    prefix=PREFIX,
    mount="/api/v1/smtp",
    routers=(configs.router,),
    render_error=render_error,
)
