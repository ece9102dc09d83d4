"""The ``mailgate`` command."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from mailgate import __version__
from mailgate.config import Settings
from mailgate.domain import Permission
from mailgate.errors import MailgateError
from mailgate.logs import configure_logging
from mailgate.services import accounts
from mailgate.store.db import Database, migrate

app = typer.Typer(help="Mailgate: a self-hosted outbound email gateway.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys of the root account.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(settings.effective_database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    migrate(settings.effective_database_url)
    try:
        return asyncio.run(run())
    except MailgateError as exc:
        from mailgate.api.problems import describe

        err.print(f"[red]error:[/red] {describe(exc, 'en').message}", highlight=False)
        raise typer.Exit(2) from exc


def _bootstrap(settings: Settings) -> None:
    """Create the root account on an empty database and show its key exactly once."""

    async def work(database: Database) -> str | None:
        async with database.session() as session:
            _, plaintext = await accounts.bootstrap_root(session=session, email=settings.root_email)
            return plaintext

    plaintext = _with_database(settings, work)
    if plaintext:
        out.print("[bold green]Created the root account.[/bold green] Its API key, shown once:")
        out.print(f"\n    [bold]{plaintext}[/bold]\n", highlight=False)
        out.print("Keep it safe: only its hash is stored. More keys: `mailgate keys create`.")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command(name="migrate")
def migrate_command() -> None:
    """Apply database migrations (also done by `serve`)."""
    settings = Settings()
    migrate(settings.effective_database_url)
    err.print("database is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MAILGATE_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MAILGATE_HTTP_PORT).")] = None,
) -> None:
    """Migrate, create the root account if needed, serve every API surface and deliver
    (in-process workers unless MAILGATE_RUN_WORKERS=false)."""
    from mailgate.api.app import create_app
    from mailgate.api.http_protocol import PROTOCOL

    settings = Settings()
    _bootstrap(settings)
    processes = settings.effective_processes
    if processes > 1 and not settings.redis_url:
        err.print(
            f"{processes} processes: per-key rate limits are counted in each process "
            "(set MAILGATE_REDIS_URL to share them)."
        )
    common: dict[str, Any] = {
        "host": host or settings.http_host,
        "port": port or settings.http_port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "proxy_headers": False,
        "http": PROTOCOL,  # httptools, each response sent in one system call
    }
    deliverer = None
    if settings.effective_delivery_process:
        # The serving processes only accept (and nudge the deliverer); they read their
        # settings from the environment when there are several.
        deliverer = DeliveryProcess()
        deliverer.start()
        settings = settings.model_copy(update={"run_workers": False})
        os.environ["MAILGATE_RUN_WORKERS"] = "false"
    try:
        if processes == 1:
            uvicorn.run(create_app(settings, run_migrations=False, settle_gc=True), **common)
        else:  # each process builds its app from the same environment (MAILGATE_*)
            uvicorn.run("mailgate.api.app:served_app", factory=True, workers=processes, **common)
    finally:
        if deliverer is not None:
            deliverer.stop()


class DeliveryProcess:
    """``serve``'s own ``mailgate worker``: started with it, started again if it dies,
    stopped with it (and, on Linux, ended by the kernel if ``serve`` itself is killed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = False
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher = threading.Thread(target=self._watch, name="delivery-process", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        env = {**os.environ, DELIVERY_PARENT: str(os.getpid())}
        command = [sys.executable, "-m", "mailgate", "worker"]
        with self._lock:
            if not self._stopping:
                self._process = subprocess.Popen(command, env=env)  # noqa: S603 - ourselves

    def _watch(self) -> None:
        while True:
            process = self._process
            assert process is not None
            code = process.wait()
            with self._lock:
                if self._stopping:
                    return
            # A clean stop (exit 0, or SIGINT/SIGTERM from a terminal's Ctrl-C, which reached
            # the whole process group) is serve stopping too; anything else is a crash.
            if code == 0 or code in (-signal.SIGINT, -signal.SIGTERM):
                return
            err.print(f"the delivery process exited with {code}; starting it again")
            time.sleep(1)
            self._spawn()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


DELIVERY_PARENT = "MAILGATE_DELIVERY_PARENT"  # set by serve for the worker it starts


def _end_with_parent() -> None:
    """A worker started by ``serve`` ends when ``serve`` does, even killed (Linux)."""
    parent = os.environ.get(DELIVERY_PARENT)
    if not parent or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before prctl: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)


@app.command()
def worker() -> None:
    """Deliver queued mail (no API): run as many as you like against one PostgreSQL."""

    from mailgate.delivery.coordination import DeliveryLock, WakeListener
    from mailgate.delivery.worker import Worker
    from mailgate.node import start_upkeep
    from mailgate.runtime import run_event_loop, settle_garbage_collector
    from mailgate.security.secrets_box import SecretBox

    settings = Settings()
    configure_logging(settings.log_level)
    migrate(settings.effective_database_url)

    _end_with_parent()

    async def run() -> None:
        database = Database(settings.effective_database_url)
        delivery = Worker(database, SecretBox(settings.secret_keys()), settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # The holder of the data dir's delivery lock is nudged by the processes that accept
        # mail there (see delivery.coordination); others poll.
        lock = DeliveryLock(settings.data_dir)
        listener = WakeListener(settings.data_dir, delivery) if lock.acquire() else None
        if listener is not None:
            lock.announce(delivery.worker_id)
            await listener.start()
        role = "handed mail by the gateway's processes" if listener else "polling"
        err.print(f"worker {delivery.worker_id} delivering ({role})")
        settle_garbage_collector()
        async with AsyncExitStack() as stack:  # undone in reverse order
            stack.push_async_callback(database.dispose)
            stack.callback(lock.release)
            # no more handoffs, then the worker gives back what it was handed and not started
            stack.push_async_callback(delivery.close)
            if listener is not None:
                stack.callback(listener.close)
            start_upkeep(stack, database, delivery.box, settings, purge=listener is not None)
            await delivery.run(stop)

    run_event_loop(run())


@app.command()
def smtpd() -> None:
    """Run the SMTP relay listener without the API (MAILGATE_SMTP_PORT, MAILGATE_SMTP_TLS_PORT),
    delivering what it accepts unless MAILGATE_RUN_WORKERS=false."""
    from mailgate.node import running_node
    from mailgate.runtime import run_event_loop

    settings = Settings()
    if not settings.smtp_port:
        err.print("[red]error:[/red] MAILGATE_SMTP_PORT is 0: there is no listener to run")
        raise typer.Exit(2)
    _bootstrap(settings)
    configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with running_node(settings, run_migrations=False, relay=True, settle_gc=True):
            err.print(f"relay listening on {settings.smtp_host}:{settings.smtp_port}")
            await stop.wait()

    run_event_loop(run())


@app.command()
def purge() -> None:
    """Remove the MIME of finished mail older than MAILGATE_ARCHIVE_RETENTION_DAYS now
    (the delivering process also does it every MAILGATE_ARCHIVE_PURGE_INTERVAL_SECONDS)."""
    from mailgate.services.retention import purge_expired

    settings = Settings()

    async def work(database: Database) -> int:
        return await purge_expired(
            database=database,
            retention_days=settings.archive_retention_days,
            batch_size=settings.archive_purge_batch_size,
        )

    if settings.archive_retention_days == 0:
        err.print("MAILGATE_ARCHIVE_RETENTION_DAYS is 0: message bodies are kept forever")
        return
    purged = _with_database(settings, work)
    err.print(f"purged the bodies of {purged} messages")


@app.command("dev-sink")
def dev_sink(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 2526,
    show_body: Annotated[bool, typer.Option(help="Print whole messages.")] = False,
) -> None:
    """A local SMTP server that accepts any mail (and any AUTH) and prints it."""
    from mailgate.dev_sink import serve_sink

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_sink(host, port, show_body=show_body, console=out))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")],
    permission: Annotated[
        list[str] | None,
        typer.Option(help="Grant only this permission (repeatable). Default: all."),
    ] = None,
) -> None:
    """Create a key for the root account; prints only the key on stdout."""
    settings = Settings()

    async def work(database: Database) -> str:
        async with database.session() as session:
            account = await accounts.root_account(session=session)
            if account is None:
                account = await accounts.create_account(
                    session=session, name="root", email=settings.root_email, root=True
                )
            _, plaintext = await accounts.create_key(
                session=session, account_id=account.id, name=name, permissions=permission or None
            )
            return plaintext

    print(_with_database(settings, work))


@keys_app.command("list")
def keys_list() -> None:
    """List keys: prefix, name, permissions, state. Never the keys themselves."""
    settings = Settings()

    async def work(database: Database) -> Table:
        async with database.session() as session:
            table = Table("prefix", "name", "permissions", "created", "state")
            for key in await accounts.list_keys(session=session):
                table.add_row(
                    key.prefix,
                    key.name,
                    " ".join(key.permissions),
                    key.created_at.isoformat(timespec="seconds"),
                    "revoked" if key.revoked_at else "active",
                )
            return table

    out.print(_with_database(settings, work))


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. mg_1a2b3c4d.")],
) -> None:
    """Revoke a key by its prefix."""
    settings = Settings()

    async def work(database: Database) -> None:
        async with database.session() as session:
            await accounts.revoke_key(session=session, prefix=prefix)

    _with_database(settings, work)
    err.print(f"revoked {prefix}")


@keys_app.command("permissions")
def keys_permissions() -> None:
    """List the permissions a key can hold."""
    for permission in Permission:
        print(permission.value)
