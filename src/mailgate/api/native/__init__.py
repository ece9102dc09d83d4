"""Native API ``/api/v1`` (the Sendmux document's shapes, extended to every resource)."""

from mailgate.api.native.errors import render_error
from mailgate.api.native.routes import (
    events,
    ip_auth,
    message_content,
    messages,
    providers,
    smtp_users,
    stats,
    suppressions,
    templates,
    tracking,
    webhooks,
)
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
        stats.router,
        suppressions.router,
        events.router,
        message_content.router,
        templates.router,
        tracking.router,
        webhooks.router,
    ),
    render_error=render_error,
)
