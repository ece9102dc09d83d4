"""DocSpace ``/smtpsettings/smtp/test``: a background job that really delivers a test mail to
the caller's address through the saved settings, and ``/test/status`` to follow it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from conftest import Tenant, new_tenant
from smtp_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer

URL = "/api/2.0/smtpsettings/smtp"
DOC_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
DEADLINE_SECONDS = 20.0


def job_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 1
    assert body["status"] == 0
    assert body["statusCode"] == 200
    assert body["links"] == [{"href": str(response.request.url), "action": "GET"}]
    job: dict[str, Any] = body["response"]
    assert set(job) == {"id", "completed", "status", "error", "percents"}
    assert isinstance(job["id"], str) and job["id"]
    assert 0 <= job["percents"] <= 100
    return job


def wait_until_completed(tenant: Tenant) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        job = job_of(tenant.client.get(URL + "/test/status"))
        if job["completed"]:
            return job
        assert time.monotonic() < deadline, f"the test job did not finish: {job}"
        time.sleep(0.05)


def save(tenant: Tenant, **fields: Any) -> None:
    body = {"senderAddress": "portal@example.com", "senderDisplayName": "Portal", **fields}
    response = tenant.client.post(URL, json=body)
    assert response.status_code == 200, response.text


def test_the_test_mail_arrives_through_starttls_with_auth(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    save(
        tenant,
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        enableSSL=True,  # not port 465: STARTTLS
        enableAuth=True,
        credentialsUserName=SMTP_USER,
        credentialsUserPassword=SMTP_PASSWORD,
    )

    started = job_of(tenant.client.get(URL + "/test", headers=DOC_HEADERS))
    finished = wait_until_completed(tenant)

    assert finished["id"] == started["id"]
    assert finished["error"] == ""
    assert finished["percents"] == 100
    assert finished["status"] == "completed"
    [message] = smtp_starttls.messages
    assert message.rcpt_tos == [tenant.email]
    assert message.parsed["To"] == tenant.email
    assert message.mail_from == "portal@example.com"
    assert message.parsed["From"].addresses[0].display_name == "Portal"
    assert message.tls is True
    assert message.login == SMTP_USER


def test_the_emptied_password_still_authenticates_after_a_round_trip(
    tenant: Tenant, smtp_starttls: SmtpServer
) -> None:
    save(
        tenant,
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        enableSSL=True,
        enableAuth=True,
        credentialsUserName=SMTP_USER,
        credentialsUserPassword=SMTP_PASSWORD,
    )
    shown = tenant.client.get(URL).json()["response"]
    assert shown["credentialsUserPassword"] == ""
    assert tenant.client.post(URL, json=shown).status_code == 200

    job_of(tenant.client.get(URL + "/test"))
    finished = wait_until_completed(tenant)

    assert finished["error"] == ""
    assert [m.rcpt_tos for m in smtp_starttls.messages] == [[tenant.email]]
    assert [a.success for a in smtp_starttls.auth_attempts] == [True, True]


def test_plain_settings_without_auth_deliver(tenant: Tenant, smtp_plain: SmtpServer) -> None:
    save(tenant, host=smtp_plain.host, port=smtp_plain.port, enableSSL=False, enableAuth=False)

    job_of(tenant.client.get(URL + "/test"))
    finished = wait_until_completed(tenant)

    assert finished["error"] == ""
    [message] = smtp_plain.messages
    assert message.rcpt_tos == [tenant.email]
    assert message.tls is False
    assert message.login is None


def test_an_unreachable_host_is_reported_in_the_job(tenant: Tenant, refused_port: int) -> None:
    save(tenant, host="127.0.0.1", port=refused_port, enableSSL=False, enableAuth=False)

    response = tenant.client.get(URL + "/test")

    assert job_of(response)["error"] == ""  # the request itself succeeds
    finished = wait_until_completed(tenant)
    assert finished["error"]
    assert finished["percents"] == 100
    assert finished["status"] == "failed"


def test_a_wrong_password_is_reported_in_the_job(tenant: Tenant, smtp_starttls: SmtpServer) -> None:
    save(
        tenant,
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        enableSSL=True,
        enableAuth=True,
        credentialsUserName=SMTP_USER,
        credentialsUserPassword="wrong-password",
    )

    job_of(tenant.client.get(URL + "/test"))
    finished = wait_until_completed(tenant)

    assert finished["error"]
    assert "wrong-password" not in finished["error"]
    assert smtp_starttls.messages == []


def test_while_a_test_runs_the_same_job_is_returned(
    tenant: Tenant, stalled_server: tuple[str, int]
) -> None:
    host, port = stalled_server  # accepts, never greets: the job waits for the SMTP timeout
    save(tenant, host=host, port=port, enableSSL=False, enableAuth=False)

    first = job_of(tenant.client.get(URL + "/test"))
    second = job_of(tenant.client.get(URL + "/test"))

    assert second["id"] == first["id"]
    assert second["completed"] is False
    finished = wait_until_completed(tenant)
    assert finished["id"] == first["id"]
    assert finished["error"]
    third = job_of(tenant.client.get(URL + "/test"))
    assert third["id"] != first["id"]  # once finished, asking again starts a new test
    wait_until_completed(tenant)


def test_without_settings_the_installation_defaults_are_tested(tenant: Tenant) -> None:
    # The test installation's default host (smtp.installation.test) does not exist.
    job_of(tenant.client.get(URL + "/test"))
    finished = wait_until_completed(tenant)

    assert finished["error"]
    assert finished["percents"] == 100


def test_status_before_any_test_is_404_in_docspace_shape(tenant: Tenant) -> None:
    response = tenant.client.get(URL + "/test/status")

    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 1
    assert body["statusCode"] == 404
    assert body["error"]["type"] == "ItemNotFoundException"
    assert body["error"]["message"]


def test_jobs_belong_to_the_account(tenant: Tenant, refused_port: int) -> None:
    save(tenant, host="127.0.0.1", port=refused_port, enableSSL=False, enableAuth=False)
    started = job_of(tenant.client.get(URL + "/test"))
    wait_until_completed(tenant)

    reader = {"Authorization": f"Bearer {tenant.key_with('providers:read')}"}
    seen = job_of(tenant.client.get(URL + "/test/status", headers=reader))
    assert seen["id"] == started["id"]
    with new_tenant(tenant.server) as stranger:
        assert stranger.client.get(URL + "/test/status").status_code == 404
