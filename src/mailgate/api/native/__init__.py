"""Native API ``/api/v1`` (the Sendmux document's shapes, extended to every resource)."""

from mailgate.api.native.errors import render_error
from mailgate.api.native.routes import ip_auth, messages, providers, smtp_users
from mailgate.api.surface import Surface

surface = Surface(
    name="native",
    prefix="/api/v1",
    mount="/api/v1",
    routers=(
        messages.router,
        providers.router,
        smtp_users.router,
        ip_auth.router,
    ),
    render_error=render_error,
)
