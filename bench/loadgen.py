"""A small closed-loop HTTP/1.1 load generator: exactly N POSTs over C keep-alive connections.

Why not ``ab`` or ``wrk``: ``ab -k`` speaks HTTP/1.0 and uvicorn closes every HTTP/1.0
connection (no keep-alive), and ``wrk`` runs for a duration, not for a count, so it cannot
send exactly N messages. This one pre-encodes the request once and parses only the status
line and Content-Length of each response, on uvloop: a few tens of microseconds of CPU per
request, so it leaves the server the CPU (it prints its own CPU time to prove it).

A request that fails (connection dropped, timeout) is counted and NOT retried: a retry
could submit a message twice. The connection is then reopened for the next request.

Prints one JSON object on stdout. Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the same
clock in every process on the machine) so the caller can compare them with its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path


class Stats:
    def __init__(self, n: int) -> None:
        self.remaining = n
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: dict[int, str] = {}  # first body per non-2xx status
        self.first_sent: float | None = None
        self.last_done: float | None = None
        self.last_2xx: float | None = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
        return status, bytes(body), close
    if length is None:  # no length, no chunking: the body runs to the end of the connection
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


async def _client(
    host: str,
    port: int,
    request: bytes,
    stats: Stats,
    timeout: float,  # noqa: ASYNC109 - per request, not one deadline
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while stats.remaining > 0:
            stats.remaining -= 1
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout
                    )
                except (OSError, TimeoutError) as exc:
                    stats.errors[f"connect: {type(exc).__name__}: {exc}"] += 1
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None and writer is not None
            started = time.monotonic()
            if stats.first_sent is None:
                stats.first_sent = started
            try:
                writer.write(request)
                async with asyncio.timeout(timeout):
                    status, body, close = await _read_response(reader)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                stats.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                writer.close()
                writer = None
                continue
            done = time.monotonic()
            stats.last_done = done
            stats.latencies.append(done - started)
            stats.statuses[status] += 1
            if 200 <= status < 300:
                stats.last_2xx = done
            elif status not in stats.samples:
                stats.samples[status] = body[:500].decode("utf-8", "replace")
            if close:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _main(args: argparse.Namespace, body: bytes) -> dict[str, object]:
    head = [
        f"{args.method} {args.path} HTTP/1.1",
        f"Host: {args.host}:{args.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *args.header,
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    stats = Stats(args.n)
    cpu0 = time.process_time()
    await asyncio.gather(
        *(_client(args.host, args.port, request, stats, args.timeout) for _ in range(args.c))
    )
    cpu = time.process_time() - cpu0
    latencies = sorted(stats.latencies)
    ok = sum(count for status, count in stats.statuses.items() if 200 <= status < 300)
    elapsed = (stats.last_done - stats.first_sent) if stats.first_sent and stats.last_done else None
    return {
        "requests": args.n,
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": dict(stats.errors),
        "error_bodies": {str(k): v for k, v in stats.samples.items()},
        "first_sent": stats.first_sent,
        "last_done": stats.last_done,
        "last_2xx": stats.last_2xx,
        "elapsed": elapsed,
        "p50_ms": None if not latencies else 1000 * _percentile(latencies, 0.50),  # type: ignore[operator]
        "p90_ms": None if not latencies else 1000 * _percentile(latencies, 0.90),  # type: ignore[operator]
        "p99_ms": None if not latencies else 1000 * _percentile(latencies, 0.99),  # type: ignore[operator]
        "max_ms": None if not latencies else 1000 * latencies[-1],
        "cpu_seconds": cpu,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", required=True, help="file holding the JSON body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("-c", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args()
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(_main(args, Path(args.body).read_bytes()))
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # do not wait for connections the server is slow to close


if __name__ == "__main__":
    main()
