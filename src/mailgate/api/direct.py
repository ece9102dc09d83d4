"""Direct routes: the busiest endpoints served ahead of FastAPI's per-request machinery.

Sending mail is the gateway's hot path, and on it FastAPI's matching, middleware stack and
dependency solving took about as much of the event loop as the endpoint's own work
(bench/README.md, "Direct routes"). A direct route is an ordinary endpoint, declared to
FastAPI as usual (the OpenAPI document describes it), and marked with :func:`direct`.
:class:`DirectRoutes` serves its method and path itself, in FastAPI's order: the body is
read within the size limit and parsed as JSON (unparsable JSON is refused before
authentication), the endpoint's dependencies are called in the order declared, and the body
is validated with the endpoint's model. A raised error is rendered by the app's handler,
exactly as FastAPI would have it rendered. Every other request goes through FastAPI.

Supported parameters, checked when the app is built: the ``Request``, one pydantic model (the
JSON body), and ``Annotated[..., Depends(fn)]`` where ``fn`` takes the ``Request`` and
``Annotated[..., Header()]`` values with defaults.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, get_args, get_origin, get_type_hints

from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends, Header
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mailgate.api.routing import MailgateRoute, is_json, parse_json, read_body, replaying
from mailgate.errors import MailgateError

__all__ = ["DirectRoutes", "direct", "direct_routes"]

Endpoint = Callable[..., Awaitable[Response]]
ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]
# What the app's exception handlers answer; anything else is also logged by the server.
HANDLED: Final = (MailgateError, RequestValidationError, HTTPException)

_marked: set[Endpoint] = set()


def direct(endpoint: Endpoint) -> Endpoint:
    """Mark a route's endpoint to be served by :class:`DirectRoutes` (apply it under the
    router's decorator)."""
    _marked.add(endpoint)
    return endpoint


Resolver = Callable[[Request], Awaitable[Any]]


def _header_of(name: str, marker: Header, default: Any) -> Callable[[Request], Any]:
    header = marker.alias or (name.replace("_", "-") if marker.convert_underscores else name)
    return lambda request: request.headers.get(header, default)


def _dependency(fn: Callable[..., Any]) -> Resolver:
    """Calls ``fn`` with the request and its declared headers."""
    hints = get_type_hints(fn, include_extras=True)
    arguments: dict[str, Callable[[Request], Any]] = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        hint = hints.get(name)
        marker = _marker(hint)
        if hint is Request:
            arguments[name] = lambda request: request
        elif isinstance(marker, Header) and parameter.default is not parameter.empty:
            arguments[name] = _header_of(name, marker, parameter.default)
        else:
            raise TypeError(f"direct route dependency {fn.__qualname__}: {name} is not supported")

    async def resolve(request: Request) -> Any:
        return await fn(**{name: get(request) for name, get in arguments.items()})

    return resolve


def _marker(hint: Any) -> Any:
    if get_origin(hint) is Annotated:
        return get_args(hint)[1]
    return None


@dataclass(frozen=True)
class _Served:
    endpoint: Endpoint
    body_name: str
    body_model: type[BaseModel]
    request_name: str | None
    dependencies: tuple[tuple[str, Resolver], ...]
    force_json: bool

    @classmethod
    def of(cls, route: MailgateRoute) -> _Served:
        endpoint = route.endpoint
        hints = get_type_hints(endpoint, include_extras=True)
        body: tuple[str, type[BaseModel]] | None = None
        request_name = None
        dependencies: list[tuple[str, Resolver]] = []
        for name in inspect.signature(endpoint).parameters:
            hint = hints.get(name)
            marker = _marker(hint)
            if hint is Request:
                request_name = name
            elif isinstance(marker, Depends) and marker.dependency is not None:
                dependencies.append((name, _dependency(marker.dependency)))
            elif inspect.isclass(hint) and issubclass(hint, BaseModel) and body is None:
                body = (name, hint)
            else:
                raise TypeError(f"direct route {endpoint.__qualname__}: {name} is not supported")
        if body is None:
            raise TypeError(f"direct route {endpoint.__qualname__}: no JSON body model")
        return cls(endpoint, body[0], body[1], request_name, tuple(dependencies), route.force_json)

    async def __call__(self, request: Request, limit: int) -> Response:
        raw = await read_body(request, limit)
        request = replaying(request, raw)  # for a dependency that reads it too
        document: Any = None
        if raw:
            if self.force_json or is_json(request.headers.get("content-type")):
                try:
                    document = parse_json(raw)
                except json.JSONDecodeError as exc:
                    raise _json_error(exc) from exc
                except ValueError as exc:  # not UTF-8
                    raise HTTPException(400, "There was an error parsing the body") from exc
                request._json = document  # Starlette's cache: a dependency may read it too
            else:
                document = raw  # validated as is, and refused: not an object
        values: dict[str, Any] = {}
        if self.request_name is not None:
            values[self.request_name] = request
        for name, resolve in self.dependencies:
            values[name] = await resolve(request)
        if not raw:
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        try:
            values[self.body_name] = self.body_model.model_validate(document, from_attributes=True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from exc
        return await self.endpoint(**values)


def _json_error(exc: json.JSONDecodeError) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
        ]
    )


def direct_routes(routes: Iterable[tuple[str, MailgateRoute]]) -> dict[tuple[str, str], _Served]:
    """``(method, path) -> served`` for the marked endpoints among ``(path, route)``."""
    served: dict[tuple[str, str], _Served] = {}
    for path, route in routes:
        if route.endpoint in _marked:
            for method in route.methods or ():
                served[(method, path)] = _Served.of(route)
    return served


class DirectRoutes:
    """ASGI middleware: serves the direct routes, passes everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[tuple[str, str], _Served],
        render_error: ErrorRenderer,
    ) -> None:
        self.app = app
        self.routes = routes
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self.routes.get((scope.get("method", ""), scope.get("path", "")))
        if served is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await served(request, request.app.state.ctx.settings.max_request_bytes)
        except Exception as exc:
            await (await self.render_error(request, exc))(scope, receive, send)
            if not isinstance(exc, HANDLED):
                raise  # logged with its traceback by the server, as FastAPI's errors are
            return
        await response(scope, receive, send)
