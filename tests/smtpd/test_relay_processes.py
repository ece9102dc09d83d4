"""`mailgate serve` with two processes: both bind the relay port (SO_REUSEPORT), and mail
relayed through either is delivered once."""

from __future__ import annotations

import smtplib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from conftest import free_port
from serve_process import serving
from smtp_servers import SmtpServer


def test_two_processes_share_the_relay_port(tmp_path: Path, smtp_plain: SmtpServer) -> None:
    count = 60
    port = free_port()
    with serving(
        tmp_path,
        MAILGATE_PROCESSES="2",
        MAILGATE_SMTP_PORT=str(port),
        MAILGATE_QUEUE_POLL_SECONDS="0.2",
    ) as server:
        server.add_sink_provider(smtp_plain.host, smtp_plain.port)
        listed = httpx.post(
            f"{server.base_url}/api/v1/ip-auth", headers=server.auth, json={"network": "127.0.0.1"}
        )
        assert listed.status_code == 201, listed.text

        def send(i: int) -> None:
            to = f"r{i}@example.net"
            data = f"From: app@example.com\r\nTo: {to}\r\nSubject: relayed {i}\r\n\r\nhi\r\n"
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:  # a connection each
                client.sendmail("app@example.com", [to], data.encode())

        with ThreadPoolExecutor(max_workers=20) as pool:
            list(pool.map(send, range(count)))
        deadline = time.monotonic() + 60
        while len(smtp_plain.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a duplicate would arrive now
    subjects = Counter(str(m.parsed["Subject"]) for m in list(smtp_plain.messages))
    assert subjects == Counter(f"relayed {i}" for i in range(count))
    listening = [line for line in server.output if "relay listening" in line]
    assert len(listening) == 2, "".join(server.output)  # both processes bound the port
