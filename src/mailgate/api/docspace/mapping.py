"""DocSpace ``SmtpSettingsDto`` <-> domain. Pure functions and lookup tables.

The account's one DocSpace setting is its default provider; with none, the installation's
defaults (``MAILGATE_DOCSPACE_DEFAULT_*``) stand in, flagged ``isDefaultSettings: true``.
"""

from __future__ import annotations

from typing import Any, Final

from mailgate.api.docspace.schemas import SmtpSettingsIn
from mailgate.config import Settings
from mailgate.domain import AuthMethod, Security, SmtpEndpoint
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_, translate_stored
from mailgate.services.providers import ProviderChanges
from mailgate.store.models import Provider, SmtpTestJob

PROVIDER_NAME: Final = "DocSpace SMTP"
DEFAULT_PORT: Final = 25
IMPLICIT_TLS_PORT: Final = 465

# Domain field -> DocSpace field, to say service issues in this surface's names.
DOMAIN_TO_REQUEST: Final = {
    "host": "host",
    "port": "port",
    "from_email": "senderAddress",
    "from_name": "senderDisplayName",
    "username": "credentialsUserName",
    "password": "credentialsUserPassword",
    "security": "enableSSL",
    "auth_method": "useNtlm",
}

Fallback = tuple[SmtpEndpoint, str, str | None]


def security_for(enable_ssl: bool, port: int) -> Security:
    """DocSpace's one SSL switch: implicit TLS on 465, STARTTLS on any other port."""
    if not enable_ssl:
        return Security.NONE
    return Security.TLS if port == IMPLICIT_TLS_PORT else Security.STARTTLS


def _required(name: str) -> Issue:
    return Issue(name, N_("This field is required."), "required")


def to_changes(body: SmtpSettingsIn, *, has_stored_password: bool, create: bool) -> ProviderChanges:
    """A save request as the default provider's new values.

    ``enableAuth`` absent means: authenticate when a user name is given. An empty password
    with auth on keeps the stored one (the UI sends back the emptied password it was shown).
    """
    username = body.credentialsUserName or None
    password = body.credentialsUserPassword or None
    enable_auth = body.enableAuth if body.enableAuth is not None else username is not None
    issues = [_required(name) for name in ("host", "senderAddress") if getattr(body, name) is None]
    if enable_auth and username is None:
        issues.append(_required("credentialsUserName"))
    if enable_auth and password is None and not has_stored_password:
        issues.append(_required("credentialsUserPassword"))
    if issues:
        raise Invalid(issues)
    port = body.port if body.port is not None else DEFAULT_PORT
    values: dict[str, Any] = {
        "host": body.host,
        "port": port,
        "security": security_for(bool(body.enableSSL), port),
        "auth_method": AuthMethod.NTLM if body.useNtlm else AuthMethod.AUTO,
        "from_email": body.senderAddress,
        "from_name": body.senderDisplayName or None,
        "username": username if enable_auth else None,
    }
    if not enable_auth:
        values["password"] = None
    elif password is not None:
        values["password"] = password
    if create:
        values |= {"name": PROVIDER_NAME, "is_default": True}
    return ProviderChanges(**values)


def settings_out(provider: Provider) -> dict[str, Any]:
    """The default provider as ``SmtpSettingsDto``; the password is never shown."""
    return {
        "host": provider.host,
        "port": provider.port,
        "senderAddress": provider.from_email or "",
        "senderDisplayName": provider.from_name or "",
        "credentialsUserName": provider.username or "",
        "credentialsUserPassword": "",
        "enableSSL": Security(provider.security) is not Security.NONE,
        "enableAuth": bool(provider.username),
        "useNtlm": provider.auth_method == AuthMethod.NTLM.value,
        "isDefaultSettings": False,
    }


def defaults_out(settings: Settings) -> dict[str, Any]:
    """The installation's defaults as ``SmtpSettingsDto`` (``isDefaultSettings: true``)."""
    enable_auth = settings.docspace_default_enable_auth
    return {
        "host": settings.docspace_default_host,
        "port": settings.docspace_default_port,
        "senderAddress": settings.docspace_default_sender_address,
        "senderDisplayName": settings.docspace_default_sender_display_name,
        "credentialsUserName": settings.docspace_default_username if enable_auth else "",
        "credentialsUserPassword": "",
        "enableSSL": settings.docspace_default_enable_ssl,
        "enableAuth": enable_auth,
        "useNtlm": False,
        "isDefaultSettings": True,
    }


def installation_fallback(settings: Settings) -> Fallback | None:
    """What a test sends through when the account has no default provider; None when the
    installation has no default host either."""
    if not settings.docspace_default_host:
        return None
    port = settings.docspace_default_port
    username: str | None = None
    password: str | None = None
    if settings.docspace_default_enable_auth and settings.docspace_default_username:
        username = settings.docspace_default_username
        secret = settings.docspace_default_password
        password = secret.get_secret_value() if secret is not None else None
    endpoint = SmtpEndpoint(
        host=settings.docspace_default_host,
        port=port,
        security=security_for(settings.docspace_default_enable_ssl, port),
        username=username,
        password=password,
    )
    sender_name = settings.docspace_default_sender_display_name or None
    return endpoint, settings.docspace_default_sender_address, sender_name


def job_out(job: SmtpTestJob, *, language: str) -> dict[str, Any]:
    """A test job as DocSpace's ``SmtpOperationStatusRequestsDto``, ``error`` in ``language``."""
    return {
        "id": job.id,
        "completed": job.completed,
        "status": job.status,
        "error": translate_stored(job.error, language) or "",
        "percents": job.percents,
    }
