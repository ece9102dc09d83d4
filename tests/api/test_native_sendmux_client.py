"""The official ``sendmux-management`` client, unchanged, against a live Mailgate.

The client refuses any ``api_key`` not shaped ``smx_root_...`` before sending a byte, so a
Mailgate key goes through its other documented door: ``access_token`` (same Bearer header).
"""

from __future__ import annotations

import pytest
from sendmux_core.errors import SendmuxApiError
from sendmux_management import SendingAccountsApi
from sendmux_management.client import create_management_client
from sendmux_management.models.provider_create_body import ProviderCreateBody
from sendmux_management.models.provider_update_body import ProviderUpdateBody

from conftest import Tenant
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer


def sending_accounts(tenant: Tenant) -> SendingAccountsApi:
    client = create_management_client(
        access_token=tenant.key, base_url=f"{tenant.server.base_url}/api/v1"
    )
    return SendingAccountsApi(client)


def test_official_client_creates_reads_tests_and_deletes(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    api = sending_accounts(tenant)
    created = api.management_create_provider(
        idempotency_key="client-create-1",
        provider_create_body=ProviderCreateBody(
            name="Transactional SMTP",
            smtp_host=smtp_starttls.host,
            smtp_port=smtp_starttls.port,
            smtp_protocol="starttls",
            smtp_username=SMTP_USER,
            smtp_password=SMTP_PASSWORD,
            from_email="sender@example.com",
        ),
    )
    assert created.ok is True
    provider = created.data
    assert provider.id.startswith("dprov_")
    assert provider.has_smtp_password is True
    assert provider.variables == {}

    listed = api.management_list_providers(limit=10)
    assert [item.id for item in listed.data] == [provider.id]
    assert listed.pagination.has_more is False

    fetched = api.management_get_provider(provider.id)
    assert fetched.data.smtp_host == smtp_starttls.host

    updated = api.management_update_provider(
        provider.id, provider_update_body=ProviderUpdateBody(name="Renamed", percentage=50)
    )
    assert updated.data.name == "Renamed" and updated.data.percentage == 50

    tested = api.management_test_provider(provider.id, idempotency_key="client-test-1")
    assert tested.data.success is True, tested.data.message
    assert api.management_get_provider(provider.id).data.last_tested_at is not None

    assert api.management_deactivate_provider(provider.id).data.is_active is False
    assert api.management_activate_provider(provider.id).data.is_active is True

    deleted = api.management_delete_provider(provider.id)
    assert deleted.data.deleted is True and deleted.data.id == provider.id
    with pytest.raises(SendmuxApiError) as caught:
        api.management_get_provider(provider.id)
    assert caught.value.status_code == 404
    assert caught.value.code == "not_found"
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
