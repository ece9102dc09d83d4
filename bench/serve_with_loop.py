"""``mailgate serve`` on a chosen event loop: ``serve_with_loop.py asyncio|uvloop``.

``mailgate serve`` lets uvicorn pick the loop ("auto": uvloop when installed). This wrapper
only forces uvicorn's ``loop`` setting, to compare loops or to work around a loop-specific
problem (bench/run --loop).
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from mailgate.cli import app

loop = sys.argv[1]
_run = uvicorn.run


def run(application: Any, **kwargs: Any) -> None:
    kwargs["loop"] = loop
    _run(application, **kwargs)


uvicorn.run = run  # type: ignore[assignment]
app(["serve"])
