"""A real HTTP receiver for webhook tests: uvicorn in a thread, a bare ASGI app.

It keeps every request (headers, body, which secrets its signature verifies with, checked
by the ``standardwebhooks`` library, an implementation independent of Mailgate's) and
answers from a script: ``script.append(500)`` answers the next request 500,
``script.append(Stall(3))`` keeps it waiting 3 s before answering 200; an empty script
answers ``default`` (200).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conftest import free_port

__all__ = ["Received", "Receiver", "Stall", "running_receiver"]


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None  # None: stalled (the sender gave up first, as a rule)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verifies_with(self, secret: str) -> bool:
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


@dataclass
class Receiver:
    url: str
    script: deque[int | Stall] = field(default_factory=deque)
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int | None = 200) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.answered == status]

    def wait_for(
        self, check: Callable[[list[Received]], bool], seconds: float = 30
    ) -> list[Received]:
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                seen = list(self.requests)
            if check(seen):
                return seen
            assert time.monotonic() < deadline, [r.json for r in seen]
            time.sleep(0.05)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            step = self.script.popleft() if self.script else self.default
        if isinstance(step, Stall):
            with self._lock:
                self.requests.append(Received(headers, body, None))
            await asyncio.sleep(step.seconds)
            status = 200
        else:
            status = step
            with self._lock:
                self.requests.append(Received(headers, body, status))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def running_receiver(path: str = "/hooks/mailgate") -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}{path}")
    config = uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="webhook-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)
