"""`mailgate serve` as a user runs it: a real process (or several) on a data directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from conftest import free_port

MAILGATE = str(Path(sys.executable).parent / "mailgate")
KEY = re.compile(r"mg_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    # No relay listener unless a test asks for one: the default port may be taken.
    env.update({"MAILGATE_DATA_DIR": str(data_dir), "MAILGATE_SMTP_PORT": "0", "COLUMNS": "200"})
    env.update(extra)
    return env


@dataclass
class Served:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[str]
    output: list[str]  # every line printed so far (a thread drains the pipe)

    @property
    def key(self) -> str | None:
        """The root key, printed on the first start only."""
        found = KEY.search("".join(self.output))
        return found.group(0) if found else None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def add_sink_provider(self, host: str, port: int) -> None:
        """A provider (no AUTH, no TLS) for the root account, relaying to ``host:port``."""
        body = {
            "name": "sink",
            "smtp_host": host,
            "smtp_port": port,
            "smtp_protocol": "none",
            "smtp_username": "unused",
            "smtp_password": "unused",
            "smtp_auth_method": "none",
        }
        created = httpx.post(f"{self.base_url}/api/v1/providers", headers=self.auth, json=body)
        assert created.status_code == 201, created.text


@contextmanager
def serving(data_dir: Path, *, expect_key: bool = True, **env: str) -> Iterator[Served]:
    """Start `mailgate serve` on a free port and wait until /healthz answers (and, with
    ``expect_key``, until it printed the root key); stop it after."""
    port = free_port()
    process = subprocess.Popen(
        [MAILGATE, "serve"],
        env=environment(data_dir, MAILGATE_HTTP_PORT=str(port), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", data_dir, process, [])
    stdout = process.stdout
    assert stdout is not None
    drain = threading.Thread(target=lambda: served.output.extend(iter(stdout.readline, "")))
    drain.start()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = httpx.get(f"{served.base_url}/healthz").status_code == 200
            except httpx.TransportError:
                healthy = False
            if healthy and (served.key or not expect_key):
                break
            time.sleep(0.1)
        assert served.key or not expect_key, "".join(served.output)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)
        drain.join(timeout=30)
        stdout.close()
