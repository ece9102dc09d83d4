"""One signed POST to a webhook's checked address; httpx errors become an :class:`Outcome`.

The host is resolved and checked just before the POST (webhooks.targets) and the request
goes to that address, with the ``Host`` header and the TLS server name (SNI, certificate
check) of the URL's host: a name that resolves elsewhere by the time the connection opens
cannot redirect it. Redirects are not followed (a 3xx is a failure), proxies from the
environment are not used, and only the start of the answer is read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from mailgate import __version__
from mailgate.i18n import N_, stored_message
from mailgate.webhooks.signing import signature_headers
from mailgate.webhooks.targets import TargetRefused, check_url, resolve

__all__ = ["Outcome", "encode_payload", "new_client", "post"]

USER_AGENT: Final = f"Mailgate-Webhooks/{__version__}"
ANSWER_READ_LIMIT: Final = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None  # a stored message, None on success
    duration_ms: int


def encode_payload(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def new_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


async def post(
    client: httpx.AsyncClient,
    *,
    url: str,
    message_id: str,
    payload: Any,
    secrets: Sequence[str],
    allow_private: bool,
    timeout_seconds: float,
) -> Outcome:
    """POST ``payload`` to ``url``, signed with every secret in ``secrets``."""
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    try:
        target = await resolve(check_url(url), allow_private=allow_private)
    except TargetRefused as refused:
        return done(None, stored_message(refused.reason, refused.params))
    except ValueError:  # a URL saved before a stricter check
        return done(None, stored_message(N_("This is not a valid URL.")))
    body = encode_payload(payload)
    headers = {
        "content-type": "application/json",
        "host": target.host_header,
        **signature_headers(secrets, message_id, int(time.time()), body),
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        async with client.stream(
            "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
        ) as answer:
            async for chunk in answer.aiter_raw():  # read a little, then let it go
                if answer.num_bytes_downloaded >= ANSWER_READ_LIMIT or not chunk:
                    break
    except httpx.TimeoutException:
        return done(
            None,
            stored_message(N_("No answer within {seconds} seconds."), {"seconds": timeout_seconds}),
        )
    except httpx.HTTPError as exc:
        detail = str(exc) or type(exc).__name__
        return done(
            None, stored_message(N_("Could not connect: {detail}"), {"detail": detail[:300]})
        )
    if 200 <= answer.status_code < 300:
        return done(answer.status_code, None)
    return done(
        answer.status_code,
        stored_message(N_("The receiver answered HTTP {status}."), {"status": answer.status_code}),
    )
