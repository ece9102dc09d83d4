"""What a surface package hands to the app: its router, where it lives, how it renders errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from mailgate.api.problems import Problem
from mailgate.api.routing import MailgateRoute

__all__ = ["KeyExtractor", "Surface"]

KeyExtractor = Callable[[Request], Awaitable[str | None]]


@dataclass(frozen=True)
class Surface:
    name: str
    prefix: str  # every path of the surface starts with it (errors are rendered by it)
    mount: str  # where its routers are included
    # Included one by one under ``mount``, not nested in a router of the surface: FastAPI
    # matches a request level by level, and each level costs a pass over its routes.
    routers: tuple[APIRouter, ...]
    render_error: Callable[[Request, Problem], Response]

    def include(self, app: FastAPI) -> None:
        for router in self.routers:
            app.include_router(router, prefix=self.mount)

    def routes(self) -> Iterator[tuple[str, MailgateRoute]]:
        """``(full path, route)`` of each of its routes."""
        for router in self.routers:
            for route in router.routes:
                if isinstance(route, MailgateRoute):
                    yield self.mount + route.path, route
