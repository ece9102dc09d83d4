"""The relay's certificate: the operator's pair when given, else one generated once per
data directory and kept private."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import trustme

from mailgate.config import Settings
from mailgate.smtpd.tls import GENERATED_PAIR, server_context


def settings(data_dir: Path, **values: object) -> Settings:
    return Settings(data_dir=data_dir, secret_key="k" * 32, **values)  # type: ignore[arg-type]


def served_certificate(context: ssl.SSLContext, client: ssl.SSLContext) -> dict[str, object]:
    """Handshake with ``context`` over a socket pair; the certificate the client saw."""
    left, right = socket.socketpair()
    with left, right:
        server = context.wrap_socket(right, server_side=True, do_handshake_on_connect=False)
        thread = threading.Thread(target=server.do_handshake)
        thread.start()
        with client.wrap_socket(left, server_hostname="relay.test") as tls:
            seen = tls.getpeercert()
        thread.join(timeout=10)
        server.close()
    assert seen is not None
    return seen


def test_a_pair_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = server_context(settings(tmp_path), "relay.test")
    path = tmp_path / GENERATED_PAIR
    pem = path.read_bytes()
    assert b"PRIVATE KEY" in pem and b"CERTIFICATE" in pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    server_context(settings(tmp_path), "relay.test")
    assert path.read_bytes() == pem  # reused, not regenerated
    client = ssl.create_default_context(cafile=str(path))  # pin the generated certificate
    seen = served_certificate(first, client)
    assert ("DNS", "relay.test") in seen["subjectAltName"]  # type: ignore[operator]


def test_the_operators_pair_is_used_when_given(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("relay.test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    context = server_context(settings(tmp_path, smtp_tls_cert=cert, smtp_tls_key=key), "x")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    seen = served_certificate(context, client)
    assert ("DNS", "relay.test") in seen["subjectAltName"]  # type: ignore[operator]
    assert not (tmp_path / GENERATED_PAIR).exists()
