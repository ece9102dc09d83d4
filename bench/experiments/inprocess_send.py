"""CPU per ``POST /api/v1/messages`` through the ASGI app itself: no sockets, no uvicorn.

``.venv/bin/python bench/experiments/inprocess_send.py [-n 2000] [--rounds 5] [--profile]``

A fresh SQLite data directory, the app with its lifespan (no delivery), and 50 concurrent
callers sending the benchmark's 1 KB message straight into the ASGI callable. Prints the
event-loop thread's CPU time per request for each round (the serial part of a serving
process), and the whole process's (the writer thread's too); with ``--profile``, the top of
a cProfile of one more round (``SORT=cumulative TOP=60`` to change its order and length).
The machine's noise moves a single round by 10-20%: compare the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import secrets
import statistics
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import uvloop

from mailgate.api.app import create_app
from mailgate.config import Settings
from mailgate.services import accounts
from mailgate.store.db import Database, migrate

CLIENTS = 50
LINE = ("Mailgate benchmark payload " * 4)[:78]
BODY = json.dumps(
    {
        "from": {"email": "bench@example.com", "name": "Bench"},
        "to": [{"email": "sink@example.net", "name": "Sink"}],
        "subject": "Mailgate benchmark",
        "text": "\n".join([LINE] * 13)[:1024],
    }
).encode()


async def _root_key(url: str) -> str:
    database = Database(url)
    try:
        async with database.session() as session:
            _, key = await accounts.bootstrap_root(session=session, email="root@example.com")
    finally:
        await database.dispose()
    assert key is not None
    return key


async def main(n: int, rounds: int, profile: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="mailgate-inprocess-"))
    url = f"sqlite+aiosqlite:///{data / 'mailgate.db'}"
    await asyncio.to_thread(migrate, url)  # alembic runs its own event loop
    key = await _root_key(url)
    settings = Settings(
        data_dir=data,
        database_url=url,
        secret_key=secrets.token_urlsafe(32),
        api_rate_limit="100000000/minute",
        run_workers=False,
        smtp_port=0,
    )
    app = create_app(settings, run_migrations=False, settle_gc=True)
    path = "/api/v1/messages"
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    statuses: dict[int, int] = {}

    async def request() -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    async def send_all(count: int) -> None:
        remaining = count

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await request()

        await asyncio.gather(*(caller() for _ in range(CLIENTS)))

    async with app.router.lifespan_context(app):
        await send_all(n)  # warm up: caches, compiled statements
        per_request, per_process = [], []
        for _ in range(rounds):
            started, process_started = time.thread_time(), time.process_time()
            await send_all(n)
            per_request.append((time.thread_time() - started) / n * 1e6)
            per_process.append((time.process_time() - process_started) / n * 1e6)
        for title, values in (("event-loop", per_request), ("process (all threads)", per_process)):
            print(
                f"{title} CPU per request (us), by round:",
                " ".join(f"{value:.0f}" for value in values),
                f"| median {statistics.median(values):.0f}",
            )
        print(f"statuses {statuses}")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await send_all(n)
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
            stats.print_stats(int(os.environ.get("TOP", "30")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    args = parser.parse_args()
    uvloop.run(main(args.n, args.rounds, args.profile))
