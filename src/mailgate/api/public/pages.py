"""The unsubscribe pages: plain server-rendered HTML, every value escaped, no scripts."""

from __future__ import annotations

import html
from typing import Final

from starlette.responses import HTMLResponse

__all__ = ["HEADERS", "confirm_page", "done_page", "invalid_page"]

# No caching (each link is one person's), no framing, no referrer (the URL is a capability).
HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
}

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem;
       color: #222; line-height: 1.5; }}
button {{ font-size: 1rem; padding: .5rem 1.25rem; cursor: pointer; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    text = _PAGE.format(title=html.escape(title), body=body)
    return HTMLResponse(text, status_code=status_code, headers=HEADERS)


def confirm_page(address: str) -> HTMLResponse:
    """The form a person confirms with (a GET never unsubscribes: link scanners follow GETs)."""
    body = (
        f"<p>Stop sending mail to <strong>{html.escape(address)}</strong> from this sender?</p>\n"
        '<form method="post">\n'
        '<input type="hidden" name="confirm" value="yes">\n'
        '<button type="submit">Unsubscribe</button>\n'
        "</form>"
    )
    return _page("Unsubscribe", body)


def done_page(address: str) -> HTMLResponse:
    body = (
        f"<p><strong>{html.escape(address)}</strong> has been unsubscribed and will not "
        "receive further mail from this sender.</p>"
    )
    return _page("You are unsubscribed", body)


def invalid_page() -> HTMLResponse:
    body = "<p>This link is not valid. It may have been copied incompletely.</p>"
    return _page("Link not valid", body, status_code=404)
