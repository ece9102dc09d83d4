"""DocSpace compatibility surface: ``/api/2.0/smtpsettings/smtp`` (one account-wide SMTP
setting, which is the account's default provider).

Keys travel as ``Authorization: Bearer <key>`` (the official ``docspace-api-sdk``) or
``X-API-Key``. Every ``/api/2.0`` path, unknown ones included, answers in DocSpace's shape.
"""

from mailgate.api.docspace.errors import render_error
from mailgate.api.docspace.routes import smtp_settings
from mailgate.api.surface import Surface

PREFIX = "/api/2.0"

surface = Surface(
    name="docspace",
    prefix=PREFIX,
    mount=PREFIX,
    routers=(smtp_settings.router,),
    render_error=render_error,
)
