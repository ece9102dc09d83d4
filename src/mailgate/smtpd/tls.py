"""The relay's TLS: the operator's certificate, or a self-signed one made once per data dir.

Clients of a smarthost on a private network usually skip verification or pin the
certificate, so a generated pair lets STARTTLS (and AUTH over it) work with no setup.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailgate.config import Settings

__all__ = ["GENERATED_PAIR", "server_context"]

GENERATED_PAIR: Final = "smtpd-tls.pem"  # key and certificate in one file, written at once
VALID_FOR: Final = datetime.timedelta(days=3650)


def server_context(settings: Settings, hostname: str) -> ssl.SSLContext:
    """A server-side context with the configured pair, else the generated one."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.smtp_tls_cert is not None and settings.smtp_tls_key is not None:
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key)
    else:
        context.load_cert_chain(_generated_pair(settings.data_dir, hostname))
    return context


def _generated_pair(data_dir: Path, hostname: str) -> Path:
    path = data_dir / GENERATED_PAIR
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written to a private temporary file, then linked into place: processes starting at
    # once never read half a file, and the first link wins.
    temporary = data_dir / f".{GENERATED_PAIR}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_self_signed(hostname))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()
    return path


def _self_signed(hostname: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        names.append(x509.DNSName("localhost"))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private + certificate.public_bytes(serialization.Encoding.PEM)
