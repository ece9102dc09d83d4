"""The JSON response every surface sends: compact, UTF-8 as is (no \\u escapes)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["json_bytes", "json_response"]


def json_bytes(body: Any) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_bytes(body), status_code=status_code, media_type="application/json", headers=headers
    )
