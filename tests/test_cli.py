"""The `mailgate` command, run as a user runs it: a real process on a fresh data directory."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_process import KEY, MAILGATE, environment, serving


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILGATE, *args],
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_create_prints_only_the_key_and_list_never_shows_it(tmp_path: Path) -> None:
    created = run(tmp_path, "keys", "create", "--name", "ci", "--permission", "providers:read")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY.fullmatch(key), created.stdout
    listed = run(tmp_path, "keys", "list")
    assert listed.returncode == 0
    prefix = "_".join(key.split("_")[:2])
    assert prefix in listed.stdout and "providers:read" in listed.stdout
    assert key not in listed.stdout

    revoked = run(tmp_path, "keys", "revoke", prefix)
    assert revoked.returncode == 0
    assert "revoked" in run(tmp_path, "keys", "list").stdout

    unknown = run(tmp_path, "keys", "create", "--name", "x", "--permission", "everything")
    assert unknown.returncode == 2
    assert "Unknown permission" in unknown.stderr
    assert unknown.stdout == ""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`mailgate serve` on a fresh data directory; yields (base URL, root key, data dir)."""
    with serving(tmp_path) as server:
        assert server.key is not None
        yield server.base_url, server.key, tmp_path


def test_serve_bootstraps_once_and_answers_the_readme_examples(
    served: tuple[str, str, Path],
) -> None:
    base, key, data_dir = served
    auth = {"Authorization": f"Bearer {key}"}
    assert (data_dir / "mailgate.db").exists()
    health = httpx.get(f"{base}/healthz")
    assert health.json()["status"] == "ok"

    created = httpx.post(
        f"{base}/api/v1/providers",
        headers={**auth, "Idempotency-Key": "readme-1"},
        json={
            "name": "Transactional SMTP",
            "smtp_host": "smtp.example.com",
            "smtp_port": 587,
            "smtp_protocol": "starttls",
            "smtp_username": "api-user",
            "smtp_password": "smtp-password",
        },
    )
    assert created.status_code == 201
    listed = httpx.get(f"{base}/api/v1/smtp/configs", headers=auth)
    assert listed.status_code == 200
    assert [c["host"] for c in listed.json()["data"]] == ["smtp.example.com"]
    spec = httpx.get(f"{base}/openapi.json").json()
    for path in (
        "/api/v1/providers",
        "/api/v1/smtp/configs",
        "/api/v2/mail/providers",
        "/api/2.0/smtpsettings/smtp",
    ):
        assert path in spec["paths"], path
    assert httpx.get(f"{base}/docs").status_code == 200

    secret_file = data_dir / "secret.key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert key not in secret_file.read_text()


def test_a_second_start_prints_no_key(served: tuple[str, str, Path]) -> None:
    _, _, data_dir = served
    with serving(data_dir, expect_key=False) as second:
        pass
    output = "".join(second.output)
    assert second.key is None, output
    assert "Created the root account" not in output
    listed = run(data_dir, "keys", "list").stdout
    assert listed.count(" root ") == 1


def test_the_access_log_is_off_unless_asked_for(tmp_path: Path) -> None:
    for asked, env in ((False, {}), (True, {"MAILGATE_ACCESS_LOG": "true"})):
        with serving(tmp_path, expect_key=not asked, **env) as served:
            assert httpx.get(f"{served.base_url}/api/v1/providers").status_code == 401
        output = "".join(served.output)  # all of it: the process has ended
        assert ('"GET /api/v1/providers HTTP/1.1" 401' in output) is asked, output
