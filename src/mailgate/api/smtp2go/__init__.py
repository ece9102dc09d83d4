"""SMTP2GO compatibility surface: ``/v3`` (the whole sending platform; for now the key,
the envelope, ``/api_keys/permissions``, ``/email/...``, the relay's SMTP users ``/smtp/...``
(and ``/users/smtp/...``) and ``/ip_auth/...``).

Every answer, success or error, is ``{"request_id": "<uuid>", "data": ...}``. The key travels
as ``X-Smtp2go-Api-Key``, ``api_key`` in the JSON body, or ``Authorization: Bearer`` /
``X-API-Key``. Bodies are JSON whatever the Content-Type says (the Python client sends none).
"""

from mailgate.api.smtp2go.errors import render_error
from mailgate.api.smtp2go.routes import (
    activity,
    api_keys,
    archive,
    email,
    ip_auth,
    smtp_users,
    suppression,
    templates,
)
from mailgate.api.smtp2go.routes import stats as stats_routes
from mailgate.api.smtp2go.routes import webhooks as webhook_routes
from mailgate.api.surface import Surface

PREFIX = "/v3"

surface = Surface(
    name="smtp2go",
    prefix=PREFIX,
    mount=PREFIX,
    routers=(
        email.router,
        api_keys.router,
        smtp_users.router,
        smtp_users.users_router,
        ip_auth.router,
        suppression.router,
        activity.router,
        archive.router,
        stats_routes.router,
        templates.router,
        webhook_routes.router,
    ),
    render_error=render_error,
)
