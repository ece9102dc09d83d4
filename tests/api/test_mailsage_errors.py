"""MailSage's error renderer and mapping, without a server (429 cannot be provoked live)."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from mailgate.api.mailsage.errors import ERRORS, render_error
from mailgate.api.mailsage.mapping import security_for
from mailgate.api.problems import Kind, Problem, TranslatedIssue, describe
from mailgate.domain import Security
from mailgate.errors import MailgateError, RateLimited, SmtpRejected, SmtpTlsError


def request() -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    return Request(scope)


def test_rate_limit_body_has_retry_after() -> None:
    problem = describe(RateLimited(retry_after=60), "en")

    response = render_error(request(), problem)

    assert response.status_code == 429
    assert json.loads(response.body) == {
        "error": "Rate limit exceeded",
        "code": "rate_limit",
        "message": "Rate limit exceeded. Retry in 60 seconds.",
        "retry_after": 60,
    }


def test_validation_body_lists_details() -> None:
    problem = Problem(
        Kind.INVALID,
        400,
        "port: Must be at most 65535.",
        (TranslatedIssue("port", "out_of_range", "Must be at most 65535."),),
    )
    body = json.loads(render_error(request(), problem).body)
    assert body == {
        "error": "Invalid request",
        "code": "invalid_request",
        "message": "port: Must be at most 65535.",
        "details": [{"field": "port", "message": "Must be at most 65535."}],
    }


@pytest.mark.parametrize(
    ("error", "code", "title"),
    [
        (
            SmtpRejected(
                "the server refused the recipient x@example.com: 550 5.1.1 User unknown", 550
            ),
            "smtp_rejected",
            "SMTP server rejected the message",
        ),
        (SmtpTlsError("TLS handshake failed"), "smtp_connection_error", "SMTP connection failed"),
    ],
)
def test_smtp_failures_are_422_in_the_documented_shape(
    error: MailgateError, code: str, title: str
) -> None:
    problem = describe(error, "en")
    response = render_error(request(), problem)
    assert response.status_code == 422
    body = json.loads(response.body)
    assert (body["error"], body["code"]) == (title, code)
    assert set(body) == {"error", "code", "message"}


def test_every_kind_has_a_code() -> None:
    assert set(ERRORS) == set(Kind)
    assert ERRORS[Kind.SMTP_TLS][0] == "smtp_connection_error"


@pytest.mark.parametrize(
    ("use_tls", "port", "security"),
    [
        (True, 465, Security.TLS),
        (True, 587, Security.STARTTLS),
        (True, 25, Security.STARTTLS),
        (False, 465, Security.NONE),
        (False, 25, Security.NONE),
    ],
)
def test_security_for(use_tls: bool, port: int, security: Security) -> None:
    assert security_for(use_tls=use_tls, port=port) is security
