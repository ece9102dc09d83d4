"""The JSON response every surface sends: compact, UTF-8 as is (no \\u escapes)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

__all__ = ["json_bytes", "json_response"]


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json_bytes(body), status_code=status_code, media_type="application/json", headers=headers
    )
