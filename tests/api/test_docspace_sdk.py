"""The official ``docspace-api-sdk`` client, unchanged, against the live server."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest

from conftest import Tenant
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer

with warnings.catch_warnings():
    # The SDK's own models shadow a BaseModel attribute ("copy"): pydantic warns on import.
    warnings.simplefilter("ignore", UserWarning)
    from docspace_api_sdk.api.security.smtp_settings_api import SMTPSettingsApi
    from docspace_api_sdk.api_client import ApiClient
    from docspace_api_sdk.configuration import Configuration
    from docspace_api_sdk.exceptions import ApiException
    from docspace_api_sdk.models.smtp_settings_dto import SmtpSettingsDto

DEADLINE_SECONDS = 20.0


def sdk_for(tenant: Tenant, key: str | None = None) -> Iterator[SMTPSettingsApi]:
    configuration = Configuration(host=tenant.server.base_url, access_token=key or tenant.key)
    with ApiClient(configuration) as client:
        yield SMTPSettingsApi(client)


@pytest.fixture
def api(tenant: Tenant) -> Iterator[SMTPSettingsApi]:
    yield from sdk_for(tenant)


def test_get_save_test_status_reset(
    api: SMTPSettingsApi, tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    initial = api.get_smtp_settings()
    assert initial.status == 0
    assert initial.status_code == 200
    assert initial.count == 1
    assert initial.response is not None
    assert initial.response.is_default_settings is True
    assert initial.response.host == "smtp.installation.test"

    saved = api.save_smtp_settings(
        SmtpSettingsDto(
            host=smtp_starttls.host,
            port=smtp_starttls.port,
            sender_address="portal@example.com",
            sender_display_name="Portal",
            credentials_user_name=SMTP_USER,
            credentials_user_password=SMTP_PASSWORD,
            enable_ssl=True,
            enable_auth=True,
            use_ntlm=False,
            is_default_settings=False,
        )
    )
    assert saved.response is not None
    assert saved.response.host == smtp_starttls.host
    assert saved.response.port == smtp_starttls.port
    assert saved.response.credentials_user_name == SMTP_USER
    assert saved.response.credentials_user_password == ""
    assert saved.response.enable_ssl is True
    assert saved.response.is_default_settings is False
    assert saved.links is not None
    assert saved.links[0].action == "POST"

    current = api.get_smtp_settings().response
    assert current == saved.response

    started = api.test_smtp_settings().response
    assert started is not None
    assert started.id
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        status = api.get_smtp_operation_status().response
        assert status is not None
        if status.completed:
            break
        assert time.monotonic() < deadline, f"the test job did not finish: {status}"
        time.sleep(0.05)
    assert status.id == started.id
    assert status.error == ""
    assert status.percents == 100
    [message] = smtp_starttls.messages
    assert message.rcpt_tos == [tenant.email]

    reset = api.reset_smtp_settings()
    assert reset.response is not None
    assert reset.response.is_default_settings is True
    assert reset.response.host == "smtp.installation.test"
    after = api.get_smtp_settings().response
    assert after is not None
    assert after.is_default_settings is True


def test_save_with_only_the_required_fields(api: SMTPSettingsApi) -> None:
    saved = api.save_smtp_settings(
        SmtpSettingsDto(host="smtp.example.org", sender_address="me@example.org")
    ).response

    assert saved is not None
    assert saved.port == 25
    assert saved.enable_auth is False
    assert saved.enable_ssl is False


def test_errors_reach_the_sdk_as_api_exceptions(tenant: Tenant) -> None:
    for api in sdk_for(tenant, tenant.key_with("providers:read")):
        assert api.get_smtp_settings().response is not None
        with pytest.raises(ApiException) as refused:
            api.reset_smtp_settings()
        assert refused.value.status == 403

    for api in sdk_for(tenant):
        with pytest.raises(ApiException) as invalid:
            api.save_smtp_settings(SmtpSettingsDto(host="smtp.example.org"))
        assert invalid.value.status == 400
        assert "senderAddress" in str(invalid.value.body)
