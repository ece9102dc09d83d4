"""Logged exceptions never show local variables (a frame may hold a decrypted password)."""

from __future__ import annotations

import secrets

import pytest
import structlog

from mailgate.logs import configure_logging


def test_a_logged_traceback_does_not_print_locals(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    password = "pw-" + secrets.token_hex(8)  # only ever in a local variable

    def authenticate(secret: str) -> None:
        raise RuntimeError("AUTH failed")

    try:
        authenticate(password)
    except RuntimeError:
        structlog.get_logger("test").exception("delivery failed")
    out, err = capsys.readouterr()
    assert "AUTH failed" in out + err
    assert password not in out + err
