"""Shared fixtures: a real Mailgate server (uvicorn, in a thread) on a real database.

Every API test runs once on SQLite (a file) and once on PostgreSQL (a database created
with a random name and dropped afterwards); PostgreSQL tests skip, saying why, when the
server is not reachable.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from mailgate.api.app import create_app
from mailgate.api.http_protocol import PROTOCOL
from mailgate.config import Settings
from mailgate.services import accounts
from mailgate.store.db import Database, migrate

pytest_plugins = ["smtp_servers"]

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def ping() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(ping())
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL at 127.0.0.1:5432 is not reachable ({type(exc).__name__}: {exc})"
    return None


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'mailgate.db'}"
        return
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    name = f"mailgate_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, migrated database for one test: the queue is global, tests must not share it."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}"
        migrate(url)
        yield url
        return
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    name = f"mailgate_queue_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    database_url: str

    def run(self, work: object) -> object:
        """Run a coroutine function ``work(session)`` against the server's database."""

        async def go() -> object:
            database = Database(self.database_url)
            try:
                async with database.session() as session:
                    return await work(session)  # type: ignore[operator]
            finally:
                await database.dispose()

        return asyncio.run(go())


def make_settings(
    database_url: str, data_dir: Path, ca_bundle: Path, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "secret_key": secrets.token_urlsafe(32),
        "api_rate_limit": "100000/minute",
        "run_workers": False,  # delivery tests start their own workers
        "smtp_port": 0,  # relay tests start their own listener
        "smtp_timeout": 5.0,
        "smtp_ca_bundle": ca_bundle,
        "docspace_default_host": "smtp.installation.test",
        "docspace_default_port": 25,
        "docspace_default_sender_address": "portal@installation.test",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def serve(settings: Settings, *, direct: bool = True) -> Iterator[LiveServer]:
    """Run Mailgate with ``settings`` under uvicorn in a thread until the block ends
    (``direct``: see ``create_app``)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, direct=direct),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        http=PROTOCOL,  # as `mailgate serve` runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mailgate-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, settings.effective_database_url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, tls_ca_bundle: Path
) -> Iterator[LiveServer]:
    settings = make_settings(database_url, tmp_path_factory.mktemp("data"), tls_ca_bundle)
    with serve(settings) as server:
        yield server


@dataclass
class Tenant:
    """A fresh account with a key holding every permission, and a client that uses it."""

    server: LiveServer
    account_id: int
    email: str
    key: str
    client: httpx.Client

    def key_with(self, *permissions: str) -> str:
        async def work(session: object) -> str:
            _, plaintext = await accounts.create_key(
                session=session,  # type: ignore[arg-type]
                account_id=self.account_id,
                name="limited",
                permissions=list(permissions),
            )
            return plaintext

        return str(self.server.run(work))


@contextmanager
def new_tenant(live_server: LiveServer) -> Iterator[Tenant]:
    email = f"owner-{secrets.token_hex(4)}@example.test"

    async def work(session: object) -> tuple[int, str]:
        account = await accounts.create_account(
            session=session,
            name="tenant",
            email=email,  # type: ignore[arg-type]
        )
        _, plaintext = await accounts.create_key(
            session=session,
            account_id=account.id,
            name="test",  # type: ignore[arg-type]
        )
        return account.id, plaintext

    account_id, key = live_server.run(work)  # type: ignore[misc]
    with httpx.Client(
        base_url=live_server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as client:
        yield Tenant(live_server, account_id, email, key, client)


@pytest.fixture
def tenant(live_server: LiveServer) -> Iterator[Tenant]:
    with new_tenant(live_server) as created:
        yield created
