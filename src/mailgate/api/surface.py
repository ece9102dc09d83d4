"""What a surface package hands to the app: its router, where it lives, how it renders errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailgate.api.problems import Problem

__all__ = ["KeyExtractor", "Surface"]

KeyExtractor = Callable[[Request], Awaitable[str | None]]


@dataclass(frozen=True)
class Surface:
    name: str
    prefix: str
    router: APIRouter
    render_error: Callable[[Request, Problem], Response]
