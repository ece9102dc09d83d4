"""Native API ``/api/v1`` (the Sendmux document's shapes, extended to every resource)."""

from fastapi import APIRouter

from mailgate.api.native.errors import render_error
from mailgate.api.native.routes import messages, providers
from mailgate.api.surface import Surface

router = APIRouter(prefix="/api/v1")
router.include_router(providers.router)
router.include_router(messages.router)

surface = Surface(name="native", prefix="/api/v1", router=router, render_error=render_error)
