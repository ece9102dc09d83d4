"""Native API ``/api/v1`` (the Sendmux document's shapes, extended to every resource)."""

from fastapi import APIRouter

from mailgate.api.native.errors import render_error
from mailgate.api.native.routes import ip_auth, messages, providers, smtp_users
from mailgate.api.surface import Surface

router = APIRouter(prefix="/api/v1")
router.include_router(providers.router)
router.include_router(messages.router)
router.include_router(smtp_users.router)
router.include_router(ip_auth.router)

surface = Surface(name="native", prefix="/api/v1", router=router, render_error=render_error)
