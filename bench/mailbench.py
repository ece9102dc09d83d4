"""Mailgate against Postfix, same machine, same upstream: ``bench/run --help``.

(a) Mailgate: a fresh data dir (SQLite unless --database-url), ``mailgate serve`` with its
in-process workers, a provider pointing at ``smtp-sink``, N messages POSTed by C concurrent
keep-alive clients (bench/loadgen.py); timed from the first request until smtp-sink has
counted all N.
(b) Postfix: a private instance (its own config, queue and data directories under the
bench's temporary directory; the system's /etc/postfix is not touched) relaying to the same
smtp-sink, fed by ``smtp-source -d``; timed from the first connection until the sink has
counted all N.

Everything started is stopped on exit (normal, error, Ctrl-C or SIGTERM) and the temporary
directory is removed. See bench/README.md.
"""

# ruff: noqa: S603, S607, S310 - a benchmark driver: it runs the tools it names
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = REPO / ".venv" / "bin"
SBIN = Path("/usr/sbin")
SENDER = "bench@example.com"
RECIPIENT = "sink@example.net"
KEY_PATTERN = re.compile(rb"\bmg_[0-9a-f]{8}_[A-Za-z0-9_-]{16,}")


class BenchError(Exception):
    """A clear, expected failure: printed without a traceback."""


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------


@dataclass
class Cleanup:
    """Things to undo, last registered first."""

    actions: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def add(self, what: str, action: Callable[[], None]) -> None:
        self.actions.append((what, action))

    def run(self) -> None:
        while self.actions:
            what, action = self.actions.pop()
            try:
                action()
            except Exception as exc:  # keep cleaning up whatever happens
                say(f"cleanup: {what}: {exc}")


def start(
    cmd: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Signal the process group the process leads, then SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        say(f"pid {proc.pid} ignored signal {sig} for {grace:g}s: killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    interval: float = 0.1,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: the process exited with {proc.returncode}{tail(log)}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}{tail(log)}")
        time.sleep(interval)


def tail(log: Path | None, lines: int = 25) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_bytes().decode("utf-8", "replace").replace("\r", "\n").splitlines()
    return f"\n--- last lines of {log} ---\n" + "\n".join(text[-lines:])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- tools -------------------------------------------------------------------------------


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise BenchError(
            f"missing {', '.join(packages)}: install as root (apt-get install "
            f"{' '.join(packages)}) or run bench/run as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"installing {' '.join(packages)} with apt-get")
    # "No configuration": the package installs, writes no main.cf and starts nothing.
    subprocess.run(
        ["debconf-set-selections"],
        check=True,
        env=env,
        input=b"postfix postfix/main_mailer_type select No configuration\n",
    )
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_tools(profile: bool) -> None:
    needed = [SBIN / "smtp-sink", SBIN / "smtp-source", SBIN / "postfix", SBIN / "postconf"]
    if not all(p.exists() for p in needed):
        apt_install(["postfix"])
    if not (VENV_BIN / "mailgate").exists():
        raise BenchError(
            f"{VENV_BIN / 'mailgate'} is missing: run `make serve` or install the "
            "project into .venv first"
        )
    if profile and not (VENV_BIN / "py-spy").exists():
        say("installing py-spy into .venv (pip)")
        subprocess.run(
            [str(VENV_BIN / "python"), "-m", "pip", "install", "-q", "py-spy"], check=True
        )


# --- smtp-sink ---------------------------------------------------------------------------


class Sink:
    """``smtp-sink -c``: its counters, updated on every '.', QUIT and session end, are
    written to stdout separated by '\\r'. We read the last ``mesg=N``."""

    def __init__(self, workdir: Path, cleanup: Cleanup) -> None:
        self.port = free_port()
        self.log = workdir / "smtp-sink.out"
        cmd = [str(SBIN / "smtp-sink"), "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        # backlog 1024; -m (simultaneous connections) stays at its default 256.
        cmd += [f"127.0.0.1:{self.port}", "1024"]
        self.proc = start(cmd, log=self.log, cwd=workdir)
        cleanup.add("smtp-sink", lambda: stop(self.proc, grace=5))
        self._offset = 0
        self._count = 0
        self._partial = b""
        self.milestones: dict[float, float] = {}  # fraction of the last wait -> when seen
        wait_for(
            "smtp-sink to listen", lambda: port_open(self.port), 10, proc=self.proc, log=self.log
        )
        say(f"smtp-sink listening on 127.0.0.1:{self.port}")

    def count(self) -> int:
        with self.log.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        cut = max(data.rfind(b"\r"), data.rfind(b"\n"))
        if cut >= 0:
            found = re.findall(rb"mesg=(\d+)", data[:cut])
            if found:
                self._count = int(found[-1])
            self._partial = data[cut + 1 :]
        else:
            self._partial = data
        if self.proc.poll() is not None:
            raise BenchError(f"smtp-sink exited with {self.proc.returncode}{tail(self.log)}")
        return self._count

    def wait_until(
        self,
        target: int,
        *,
        stall: float,
        what: str,
        progress: Callable[[], str] | None = None,
        watch: tuple[tuple[str, subprocess.Popen[bytes], Path | None], ...] = (),
        retarget: Callable[[], int | None] | None = None,
    ) -> float:
        """Poll (every 10 ms) until the sink has counted ``target`` messages; the
        monotonic time it was seen. Fails when nothing arrives for ``stall`` seconds, or
        when a ``watch``ed process exits. ``retarget`` may lower the target once it is
        known that fewer messages were accepted."""
        last, last_change, last_report = self.count(), time.monotonic(), time.monotonic()
        start = last
        marks = {
            fraction: start + max(1, round(fraction * (target - start)))
            for fraction in (0.5, 0.9, 0.99)
        }
        self.milestones = {}
        while True:
            now_count = self.count()
            now = time.monotonic()
            new_target = retarget() if retarget else None
            if new_target is not None and new_target != target:
                target = new_target
                marks = {
                    fraction: start + max(1, round(fraction * (target - start)))
                    for fraction in (0.5, 0.9, 0.99)
                }
            for name, proc, log in watch:
                if proc.poll() is not None:
                    raise BenchError(
                        f"{what}: {name} exited with {proc.returncode} while the sink had "
                        f"{now_count} of {target}{tail(log)}"
                    )
            for fraction, mark in marks.items():
                if now_count >= mark and fraction not in self.milestones:
                    self.milestones[fraction] = now
            if now_count >= target:
                self.milestones[1.0] = now
                return now
            if now_count != last:
                last, last_change = now_count, now
            elif now - last_change > stall:
                extra = f"; {progress()}" if progress else ""
                raise BenchError(
                    f"{what}: the sink has counted {now_count} of {target} and "
                    f"nothing arrived for {stall:g}s{extra}"
                )
            if now - last_report > 5:
                say(f"{what}: sink at {now_count}/{target}")
                last_report = now
            time.sleep(0.01)


# --- Mailgate ----------------------------------------------------------------------------


def http(
    method: str, url: str, key: str, body: dict[str, Any] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def text_body(size: int) -> str:
    """``size`` characters of 78-character lines, as smtp-source -l builds its payload."""
    line = ("Mailgate benchmark payload " * 4)[:78]
    lines: list[str] = []
    total = 0
    while total < size:
        piece = line[: max(1, min(78, size - total - (1 if lines else 0)))]
        lines.append(piece)
        total += len(piece) + (1 if len(lines) > 1 else 0)
    return "\n".join(lines)[:size]


def request_body(api: str, size: int) -> tuple[str, dict[str, Any], list[str]]:
    """Path, JSON body and extra headers of one submission."""
    text = text_body(size)
    if api == "smtp2go":
        return (
            "/v3/email/send",
            {
                "sender": f"Bench <{SENDER}>",
                "to": [f"Sink <{RECIPIENT}>"],
                "subject": "Mailgate benchmark",
                "text_body": text,
            },
            [],
        )
    return (
        "/api/v1/messages",
        {
            "from": {"email": SENDER, "name": "Bench"},
            "to": [{"email": RECIPIENT, "name": "Sink"}],
            "subject": "Mailgate benchmark",
            "text": text,
        },
        [],
    )


def postgres_database(url: str, cleanup: Cleanup) -> str:
    """A fresh database on the server of ``url``, dropped afterwards; its URL."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise BenchError(
            "--database-url must be a PostgreSQL URL "
            "(postgresql+asyncpg://user@host:port/db); SQLite is the default"
        )
    name = f"mailgate_bench_{secrets.token_hex(4)}"
    import asyncpg  # type: ignore[import-untyped]

    admin_dsn = parsed.set(drivername="postgresql", database=parsed.database or "postgres")

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise BenchError(f"could not create a database on {parsed.host}: {exc}") from exc
    cleanup.add(
        f"drop database {name}",
        lambda: asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')),
    )
    say(f"PostgreSQL: fresh database {name} on {parsed.host}:{parsed.port or 5432}")
    return parsed.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


@dataclass
class MailgateResult:
    submitted: int
    accepted: int
    accept_seconds: float
    deliver_seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    generator_cpu: float
    server_cpu: dict[str, float]  # by role (process_cpu)
    statuses: dict[str, int]
    errors: dict[str, int]
    error_bodies: dict[str, str]
    db_summary: str
    milestones: dict[float, float]
    machine_busy: float


@dataclass
class Served:
    """A running ``mailgate serve`` with a provider pointing at the sink."""

    proc: subprocess.Popen[bytes]
    base: str
    key: str
    log: Path
    data_dir: Path
    database_url: str
    smtp_port: int


def start_mailgate(
    args: argparse.Namespace, workdir: Path, sink: Sink, cleanup: Cleanup, database_url: str
) -> Served:
    data_dir = workdir / "mailgate"
    data_dir.mkdir()
    port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()}
    env.update(
        {
            "MAILGATE_DATA_DIR": str(data_dir),
            "MAILGATE_HTTP_HOST": "127.0.0.1",
            "MAILGATE_HTTP_PORT": str(port),
            "MAILGATE_SMTP_HOST": "127.0.0.1",
            "MAILGATE_SMTP_PORT": str(smtp_port),
            # The default (600/minute per key) would make this a test of the rate limiter.
            "MAILGATE_API_RATE_LIMIT": env.get("MAILGATE_BENCH_RATE_LIMIT", "1000000/second"),
            "MAILGATE_RUN_WORKERS": "true",
        }
    )
    env.pop("MAILGATE_DATABASE_URL", None)
    if database_url:
        env["MAILGATE_DATABASE_URL"] = database_url
    if args.log_level:
        env["MAILGATE_LOG_LEVEL"] = args.log_level
    log = workdir / "mailgate.log"
    say(
        f"starting mailgate serve on 127.0.0.1:{port}, relay on {smtp_port} "
        f"({'PostgreSQL' if database_url else 'SQLite'} in {data_dir})"
    )
    command = [str(VENV_BIN / "mailgate"), "serve"]
    if args.loop != "auto":
        command = [str(VENV_BIN / "python"), str(BENCH / "serve_with_loop.py"), args.loop]
    if args.serve_with:
        command = [str(VENV_BIN / "python"), str(Path(args.serve_with).resolve())]
    server = start(command, log=log, env=env, cwd=workdir)
    cleanup.add("mailgate serve", lambda: stop(server, sig=signal.SIGINT, grace=30))
    key_match = wait_for(
        "the root key on mailgate's output",
        lambda: KEY_PATTERN.search(log.read_bytes()),
        120,
        proc=server,
        log=log,
    )
    key = key_match.group(0).decode()
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with contextlib.suppress(OSError, ValueError):
            return http("GET", f"{base}/healthz", key, timeout=2)[0] == 200
        return False

    wait_for("mailgate /healthz", healthy, 60, proc=server, log=log, interval=0.2)

    # A provider without AUTH. smtp-sink offers AUTH PLAIN LOGIN but answers 250 instead of
    # 235, which aiosmtplib (rightly) takes as a failure; the native and MailSage surfaces
    # require a username, DocSpace's `enableAuth: false` creates one without.
    status, body = http(
        "POST",
        f"{base}/api/2.0/smtpsettings/smtp",
        key,
        {
            "host": "127.0.0.1",
            "port": sink.port,
            "senderAddress": SENDER,
            "senderDisplayName": "Bench",
            "enableSSL": False,
            "enableAuth": False,
        },
    )
    if status != 200:
        raise BenchError(f"creating the provider failed: {status} {body}{tail(log)}")
    status, body = http("GET", f"{base}/api/v1/providers", key)
    say(f"provider: {json.dumps(body.get('data') if isinstance(body, dict) else body)[:300]}")
    return Served(server, base, key, log, data_dir, database_url, smtp_port)


def run_mailgate(
    args: argparse.Namespace, workdir: Path, sink: Sink, cleanup: Cleanup, database_url: str
) -> MailgateResult:
    served = start_mailgate(args, workdir, sink, cleanup, database_url)
    server, base, key, log, data_dir = (
        served.proc,
        served.base,
        served.key,
        served.log,
        served.data_dir,
    )
    port = int(base.rsplit(":", 1)[1])

    path, payload, headers = request_body(args.api, args.size)
    body_file = workdir / "message.json"
    body_file.write_text(json.dumps(payload))
    auth = f"X-Smtp2go-Api-Key: {key}" if args.api == "smtp2go" else f"Authorization: Bearer {key}"

    # Preflight: one message end to end, so a broken path fails in seconds, clearly.
    before = sink.count()
    status, answer = http(
        "POST", base + path, key, payload | ({"api_key": key} if args.api == "smtp2go" else {})
    )
    if not 200 <= status < 300:
        raise BenchError(f"POST {path} answered {status}: {answer}")
    sink.wait_until(
        before + 1,
        stall=30,
        what="preflight message through Mailgate",
        progress=lambda: (
            f"{db_summary(data_dir, database_url)}; last events: "
            f"{db_events(data_dir, database_url)}{tail(log, 15)}"
        ),
        watch=(("mailgate serve", server, log),),
    )
    say(f"preflight ok ({status}); submitting {args.n} messages with {args.c} clients")

    profiler = None
    if args.profile:
        profiler = start_profiler(server.pid, workdir, native=args.profile_native)
        cleanup.add("py-spy", lambda: stop(profiler, sig=signal.SIGINT, grace=60))

    cpu_before = process_cpu(server.pid)
    machine_before = cpu_snapshot()
    base_count = sink.count()
    gen_log = workdir / "loadgen.json"
    with gen_log.open("wb") as out:
        generator = subprocess.Popen(
            [
                str(VENV_BIN / "python"),
                str(BENCH / "loadgen.py"),
                "--port",
                str(port),
                "--path",
                path,
                "--body",
                str(body_file),
                "--header",
                auth,
                *[arg for h in headers for arg in ("--header", h)],
                "-n",
                str(args.n),
                "-c",
                str(args.c),
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cleanup.add("load generator", lambda: stop(generator, grace=5))

    def progress() -> str:
        return (
            f"generator {'running' if generator.poll() is None else 'done'}; "
            f"{db_summary(data_dir, database_url)}{tail(log, 15)}"
        )

    accepted: list[int] = []

    def retarget() -> int | None:
        """Once the generator is done: wait for the messages it got a 2xx for."""
        if not accepted and generator.poll() is not None:
            try:
                ok = int(json.loads(gen_log.read_text())["ok"])
            except (OSError, ValueError, KeyError):
                ok = args.n  # the generator failed: its exit code is reported below
            if ok == 0:
                raise BenchError(f"no submission was accepted: {gen_log.read_text()[:2000]}")
            accepted.append(ok)
        return base_count + accepted[0] if accepted else None

    try:
        done_at = sink.wait_until(
            base_count + args.n,
            stall=args.stall,
            what="Mailgate run",
            progress=progress,
            watch=(("mailgate serve", server, log),),
            retarget=retarget,
        )
    finally:
        if profiler is not None:  # a stalled run is exactly when the profile is wanted
            stop(profiler, sig=signal.SIGINT, grace=60)
            summarise_profile(workdir)
    try:
        generator_rc = generator.wait(args.stall)
    except subprocess.TimeoutExpired as exc:
        raise BenchError("the load generator did not finish after the sink counted all") from exc
    stderr = generator.stderr.read().decode() if generator.stderr else ""
    if generator_rc != 0:
        raise BenchError(f"load generator failed ({generator_rc}): {stderr[-2000:]}")
    result = json.loads(gen_log.read_text())
    server_cpu = cpu_since(server.pid, cpu_before)
    machine_busy = cpu_busy_since(machine_before)
    if result["ok"] != args.n:
        say(
            f"warning: only {result['ok']} of {args.n} submissions got a 2xx: "
            f"statuses {result['statuses']}, errors {result['errors']}, "
            f"bodies {result['error_bodies']}"
        )
    stop(server, sig=signal.SIGINT, grace=30)
    first = result["first_sent"]
    return MailgateResult(
        submitted=args.n,
        accepted=result["ok"],
        accept_seconds=result["last_2xx"] - first,
        deliver_seconds=done_at - first,
        p50_ms=result["p50_ms"],
        p90_ms=result["p90_ms"],
        p99_ms=result["p99_ms"],
        max_ms=result["max_ms"],
        generator_cpu=result["cpu_seconds"],
        server_cpu=server_cpu,
        statuses=result["statuses"],
        errors=result["errors"],
        error_bodies=result["error_bodies"],
        db_summary=db_summary(data_dir, database_url),
        milestones={k: v - first for k, v in sink.milestones.items()},
        machine_busy=machine_busy,
    )


def process_cpu(pid: int) -> dict[str, float]:
    """User + system CPU seconds of a process, its threads and its live descendants (the
    processes of `serve` with MAILGATE_PROCESSES > 1), from /proc, by role: ``delivery`` for
    the delivery process (`mailgate worker`), ``API`` for the rest."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    roles: dict[str, float] = {"API": 0.0, "delivery": 0.0}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        try:
            command = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
        except OSError:
            command = []
        role = "delivery" if b"worker" in command else "API"
        roles[role] += stats.get(current, (0, 0.0))[1]
        frontier += [child for child, (parent, _) in stats.items() if parent == current]
    return roles


def cpu_since(pid: int, before: dict[str, float]) -> dict[str, float]:
    return {role: seconds - before.get(role, 0.0) for role, seconds in process_cpu(pid).items()}


def db_summary(data_dir: Path, database_url: str) -> str:
    """Messages by status, read straight from the SQLite file (not on PostgreSQL)."""
    path = data_dir / "mailgate.db"
    if database_url or not path.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
    except sqlite3.Error as exc:
        return f"(messages table unreadable: {exc})"
    return "messages by status: " + ", ".join(f"{s}={n}" for s, n in rows)


def db_events(data_dir: Path, database_url: str) -> str:
    path = data_dir / "mailgate.db"
    if database_url or not path.exists():
        return ""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT type, detail FROM events ORDER BY id DESC LIMIT 3")
            return "; ".join(f"{kind}: {detail}" for kind, detail in rows.fetchall())
    except sqlite3.Error as exc:
        return f"(events table unreadable: {exc})"


# --- profiling ---------------------------------------------------------------------------


def start_profiler(pid: int, workdir: Path, *, native: bool) -> subprocess.Popen[bytes]:
    """py-spy on the server and the processes it starts (the delivery process). Non-blocking
    by default: it reads the stacks without pausing the process, so the run behaves as it
    would unobserved. ``native`` adds C frames (SQLite,
    fsync, the busy handler) but must pause the process at each sample, which slows it and
    can tip a loaded server into lock timeouts."""
    out = workdir / "profile.folded"
    mode = ["--native"] if native else ["--nonblocking"]
    say(f"py-spy recording pid {pid} (100 Hz, all threads, {' '.join(mode)})")
    command = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "100"]
    command += ["--threads", "--subprocesses", *mode, "--format", "raw", "--output", str(out)]
    proc = start(command, log=workdir / "py-spy.log")
    time.sleep(1.0)
    if proc.poll() is not None:
        raise BenchError(f"py-spy failed to attach{tail(workdir / 'py-spy.log')}")
    return proc


def summarise_profile(workdir: Path) -> None:
    from profile_report import report, write_flamegraph

    folded = workdir / "profile.folded"
    if not folded.exists():
        say(f"py-spy wrote no profile{tail(workdir / 'py-spy.log')}")
        return
    shutil.copyfile(folded, BENCH / "profile.folded")
    write_flamegraph(folded, BENCH / "profile.svg")
    text = report(folded)
    (BENCH / "profile.txt").write_text(text)
    print(text)
    say(
        "profile: bench/profile.svg (flame graph), bench/profile.txt (summary), "
        "bench/profile.folded (raw stacks)"
    )


# --- Postfix -----------------------------------------------------------------------------


@dataclass
class RelayResult:
    """A relay fed by smtp-source: Postfix, or Mailgate's relay."""

    submitted: int
    inject_seconds: float
    deliver_seconds: float
    milestones: dict[float, float]
    machine_busy: float
    # Mailgate's, by role; Postfix runs as many short-lived processes
    server_cpu: dict[str, float] | None


def run_postfix(
    args: argparse.Namespace, workdir: Path, sink: Sink, cleanup: Cleanup
) -> RelayResult:
    root = workdir / "postfix"
    etc, spool, data = root / "etc", root / "spool", root / "data"
    for d in (etc, spool, data):
        d.mkdir(parents=True)
    shutil.chown(data, "postfix", "postfix")  # master.lock and caches are written as postfix
    shutil.copyfile("/etc/postfix/master.cf", etc / "master.cf")  # Debian's, as shipped
    (etc / "main.cf").write_text("")
    port = free_port()
    maillog = root / "maillog"  # under /var: the default maillog_file_prefixes allow it

    def postconf(*settings: str) -> None:
        subprocess.run(
            [str(SBIN / "postconf"), "-c", str(etc), *settings],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    postconf(
        "-e",
        "compatibility_level=3.6",  # what Debian's own configured main.cf says
        f"queue_directory={spool}",
        f"data_directory={data}",
        f"maillog_file={maillog}",
        "inet_interfaces=127.0.0.1",
        "inet_protocols=ipv4",
        "mynetworks=127.0.0.0/8",
        "mydestination=",
        f"relayhost=[127.0.0.1]:{sink.port}",
    )
    postconf("-F", "*/*/chroot = n")  # Debian chroots services and nothing populates the jail
    postconf("-MX", "smtp/inet")  # no listener on port 25
    postconf("-M", f"{port}/inet={port} inet n - n - - smtpd")
    say(f"starting a private Postfix (config {etc}) on 127.0.0.1:{port}")
    started = subprocess.run(
        [str(SBIN / "postfix"), "-c", str(etc), "start"], capture_output=True, timeout=60
    )

    def postfix_stop() -> None:
        subprocess.run(
            [str(SBIN / "postfix"), "-c", str(etc), "stop"], capture_output=True, timeout=60
        )
        pid_file = spool / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while pid_file.exists() and time.monotonic() < deadline:
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), 0)
                time.sleep(0.2)
                continue
            break

    cleanup.add("postfix", postfix_stop)
    if started.returncode != 0:
        raise BenchError(f"postfix start failed: {started.stderr.decode()}{tail(maillog)}")
    wait_for("Postfix smtpd to listen", lambda: port_open(port), 30, log=maillog)

    result = feed(args, port, sink, cleanup, "Postfix", progress=lambda: tail(maillog, 10))
    postfix_stop()
    return result


# --- smtp-source into a relay (Postfix, or Mailgate's) ------------------------------------


def smtp_source(args: argparse.Namespace, port: int, count: int) -> subprocess.Popen[bytes]:
    """``smtp-source -d``: each session keeps its connection and sends message after message
    over it (``-d``: "don't disconnect after sending a message"), as a busy application does."""
    return subprocess.Popen(
        [
            str(SBIN / "smtp-source"),
            "-d",
            "-s",
            str(args.sessions),
            "-m",
            str(count),
            "-l",
            str(args.size),
            "-f",
            SENDER,
            "-t",
            RECIPIENT,
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def feed(
    args: argparse.Namespace,
    port: int,
    sink: Sink,
    cleanup: Cleanup,
    name: str,
    *,
    progress: Callable[[], str],
    watch: tuple[tuple[str, subprocess.Popen[bytes], Path | None], ...] = (),
    cpu_of: int | None = None,
) -> RelayResult:
    """One preflight message, then N with ``smtp-source`` into the relay on ``port``, timed
    from the first connection until the sink has counted all N. ``cpu_of``: a server pid
    whose CPU time (with its descendants') is reported."""

    def finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str]:
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"smtp-source did not finish within {timeout:g}s") from exc
        return code, proc.stdout.read().decode() if proc.stdout else ""

    before = sink.count()
    pre = smtp_source(args, port, 1)
    cleanup.add(f"smtp-source (preflight into {name})", lambda: stop(pre, grace=5))
    code, said = finish(pre, 60)
    if code != 0:
        raise BenchError(f"smtp-source into {name} failed: {said}{progress()}")
    sink.wait_until(
        before + 1,
        stall=30,
        what=f"preflight message through {name}",
        progress=progress,
        watch=watch,
    )
    say(f"preflight ok; injecting {args.n} messages into {name} with {args.sessions} sessions")
    base_count = sink.count()
    cpu_before = process_cpu(cpu_of) if cpu_of else {}
    machine_before = cpu_snapshot()
    started_at = time.monotonic()
    injector = smtp_source(args, port, args.n)
    cleanup.add(f"smtp-source into {name}", lambda: stop(injector, grace=5))
    injected: list[float] = []  # when smtp-source was done: the relay had accepted all

    def note_injected() -> None:
        injector.wait()
        injected.append(time.monotonic())

    threading.Thread(target=note_injected, daemon=True).start()
    done_at = sink.wait_until(
        base_count + args.n, stall=args.stall, what=f"{name} run", progress=progress, watch=watch
    )
    rc, said = finish(injector, args.stall)
    injected_at = time.monotonic()
    machine_busy = cpu_busy_since(machine_before)
    if rc != 0:
        raise BenchError(f"smtp-source failed ({rc}): {said}")
    return RelayResult(
        submitted=args.n,
        inject_seconds=(injected[0] if injected else injected_at) - started_at,
        deliver_seconds=done_at - started_at,
        milestones={k: v - started_at for k, v in sink.milestones.items()},
        machine_busy=machine_busy,
        server_cpu=cpu_since(cpu_of, cpu_before) if cpu_of else None,
    )


def run_relay(
    args: argparse.Namespace, workdir: Path, sink: Sink, cleanup: Cleanup, database_url: str
) -> RelayResult:
    """Mailgate's SMTP relay fed exactly as Postfix is; 127.0.0.0/8 relays by IP
    authentication (smtp-source does not log in)."""
    served = start_mailgate(args, workdir, sink, cleanup, database_url)
    status, body = http(
        "POST", f"{served.base}/api/v1/ip-auth", served.key, {"network": "127.0.0.0/8"}
    )
    if status != 201:
        raise BenchError(f"listing 127.0.0.0/8 failed: {status} {body}{tail(served.log)}")
    profiler = None
    if args.profile:
        profiler = start_profiler(served.proc.pid, workdir, native=args.profile_native)
        cleanup.add("py-spy", lambda: stop(profiler, sig=signal.SIGINT, grace=60))
    try:
        result = feed(
            args,
            served.smtp_port,
            sink,
            cleanup,
            "Mailgate's relay",
            progress=lambda: f"{db_summary(served.data_dir, database_url)}{tail(served.log, 15)}",
            watch=(("mailgate serve", served.proc, served.log),),
            cpu_of=served.proc.pid,
        )
    finally:
        if profiler is not None:
            stop(profiler, sig=signal.SIGINT, grace=60)
            summarise_profile(workdir)
    stop(served.proc, sig=signal.SIGINT, grace=30)
    return result


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Mailgate vs Postfix: N messages submitted until an smtp-sink upstream "
        "has them all. Needs root the first time (apt-get install postfix).",
    )
    parser.add_argument("-n", type=int, default=10_000, help="messages (default 10000)")
    parser.add_argument(
        "-c", type=int, default=50, help="concurrent HTTP clients for Mailgate (default 50)"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="smtp-source sessions into Postfix (default: the -c value)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=1024,
        help="message body in bytes, 78-character lines (default 1024)",
    )
    parser.add_argument(
        "--via",
        choices=("http", "smtp"),
        default="http",
        help="how Mailgate gets the mail: its HTTP API from -c clients (http, default), or "
        "its SMTP relay fed by smtp-source exactly as Postfix is (smtp)",
    )
    parser.add_argument("--skip-postfix", action="store_true", help="measure Mailgate only")
    parser.add_argument("--skip-mailgate", action="store_true", help="measure Postfix only")
    parser.add_argument(
        "--database-url",
        default="",
        help="run Mailgate on PostgreSQL: a URL of the server "
        "(postgresql+asyncpg://postgres@127.0.0.1:5432/postgres); a fresh "
        "database is created on it and dropped afterwards",
    )
    parser.add_argument(
        "--api",
        choices=("native", "smtp2go"),
        default="native",
        help="submit through POST /api/v1/messages (native, default) or "
        "POST /v3/email/send (smtp2go)",
    )
    parser.add_argument(
        "--log-level",
        default="",
        help="MAILGATE_LOG_LEVEL for the run (default: Mailgate's own, info)",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop of mailgate serve (default: auto, as `mailgate "
        "serve` picks it: uvloop when installed)",
    )
    parser.add_argument(
        "--serve-with",
        default="",
        metavar="SCRIPT",
        help="experiments: run this Python script (venv python, same "
        "MAILGATE_* environment) instead of `mailgate serve`; it must serve "
        "like it, e.g. patch something and call mailgate.cli.app(['serve'])",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record Mailgate with py-spy: bench/profile.svg, profile.txt",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: C frames too (SQLite, fsync, lock waits); pauses the server at "
        "each sample, so it runs slower than unobserved",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=120.0,
        help="give up when the sink counts nothing new for this long (s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (logs, databases) for inspection",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.c < 1 or args.size < 1:
        parser.error("-n, -c and --size must be positive")
    args.sessions = args.sessions or args.c
    args.profile = args.profile or args.profile_native
    return args


def cpu_snapshot() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_busy_since(before: tuple[int, int]) -> float:
    """Share of all CPUs that were busy since ``before`` (a :func:`cpu_snapshot`)."""
    busy, total = cpu_snapshot()
    return (busy - before[0]) / max(1, total - before[1])


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over the next ``seconds``: other work skews a run."""
    before = cpu_snapshot()
    time.sleep(seconds)
    return cpu_busy_since(before)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cleanup = Cleanup()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (&)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        ensure_tools(args.profile)
        workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench.", dir="/var/tmp"))
        workdir.chmod(0o755)  # Postfix daemons (user postfix) walk into it
        if args.keep:
            say(f"keeping {workdir}")
        else:
            cleanup.add("temporary directory", lambda: shutil.rmtree(workdir, True))
        busy = cpu_busy()
        if busy > 0.15:
            say(
                f"warning: the machine is already {busy:.0%} busy before the run; other work "
                "(tests, builds) competes for the CPUs and skews both results"
            )
        sink = Sink(workdir, cleanup)
        mailgate: MailgateResult | RelayResult | None = None
        postfix = None
        if not args.skip_mailgate:
            url = postgres_database(args.database_url, cleanup) if args.database_url else ""
            run = run_relay if args.via == "smtp" else run_mailgate
            mailgate = run(args, workdir, sink, cleanup, url)
        if not args.skip_postfix:
            postfix = run_postfix(args, workdir, sink, cleanup)
        print(render(args, mailgate, postfix))
        return 0
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup.run()


def milestones(marks: dict[float, float]) -> str:
    return "delivered by: " + ", ".join(
        f"{fraction:.0%} at {seconds:.2f} s" for fraction, seconds in sorted(marks.items())
    )


def render(
    args: argparse.Namespace, mg: MailgateResult | RelayResult | None, pf: RelayResult | None
) -> str:
    lines = [
        f"== Mailgate vs Postfix: {args.n} messages, {args.size}-byte body, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')} ==",
    ]
    db = "PostgreSQL" if args.database_url else "SQLite (synchronous=FULL)"
    if isinstance(mg, MailgateResult):
        lines += [
            f"Mailgate ({db}, {args.c} HTTP clients, {args.api} API):",
            f"  accepted   {mg.accepted / mg.accept_seconds:8.0f} msg/s  "
            f"({mg.accepted} x 2xx in {mg.accept_seconds:.2f} s)",
            f"  delivered  {mg.accepted / mg.deliver_seconds:8.0f} msg/s  "
            f"(first request -> sink counted all accepted, {mg.deliver_seconds:.2f} s)",
            f"  API latency p50 {mg.p50_ms:.1f} ms, p90 {mg.p90_ms:.1f} ms, "
            f"p99 {mg.p99_ms:.1f} ms, max {mg.max_ms:.1f} ms",
            f"  CPU: server {server_cpu(mg.server_cpu, mg.submitted)}, "
            f"load generator {mg.generator_cpu:.1f} s "
            f"({1e6 * mg.generator_cpu / mg.submitted:.0f} us/request)",
        ]
        if mg.accepted != mg.submitted:
            lines.append(
                f"  FAILED SUBMISSIONS: {mg.submitted - mg.accepted} of {mg.submitted} "
                f"(statuses {mg.statuses}, errors {mg.errors}; not retried); first error "
                f"bodies: {json.dumps(mg.error_bodies)[:300]}"
            )
        lines.append(f"  {milestones(mg.milestones)}")
        lines.append(
            f"  machine CPU busy during the run: {mg.machine_busy:.0%} of {os.cpu_count()} CPUs"
        )
        if mg.db_summary:
            lines.append(f"  {mg.db_summary}")
    elif mg is not None:
        lines += relay_lines(f"Mailgate's relay ({db}, smtp-source -d -s {args.sessions}):", mg)
    if pf is not None:
        lines += relay_lines(f"Postfix (private instance, smtp-source -d -s {args.sessions}):", pf)
    if mg is not None and pf is not None:
        mine = (
            mg.accepted if isinstance(mg, MailgateResult) else mg.submitted
        ) / mg.deliver_seconds
        ratio = mine / (pf.submitted / pf.deliver_seconds)
        lines.append(f"Ratio Mailgate/Postfix (end-to-end delivered msg/s): {ratio:.2f}")
    return "\n".join(lines)


def server_cpu(roles: dict[str, float], messages: int) -> str:
    """``9.9 s, 0.99 ms/message (API 0.66, delivery 0.33)``"""
    total = sum(roles.values())
    parts = ", ".join(f"{role} {1e3 * seconds / messages:.2f}" for role, seconds in roles.items())
    return f"{total:.1f} s, {1e3 * total / messages:.2f} ms/message ({parts})"


def relay_lines(title: str, result: RelayResult) -> list[str]:
    lines = [
        title,
        f"  delivered  {result.submitted / result.deliver_seconds:8.0f} msg/s  "
        f"(first connection -> sink counted all, {result.deliver_seconds:.2f} s; "
        f"injection took {result.inject_seconds:.2f} s, "
        f"{result.submitted / result.inject_seconds:.0f} msg/s accepted)",
    ]
    if result.server_cpu is not None:
        lines.append(f"  CPU: server {server_cpu(result.server_cpu, result.submitted)}")
    lines += [
        f"  {milestones(result.milestones)}",
        f"  machine CPU busy during the run: {result.machine_busy:.0%} of {os.cpu_count()} CPUs",
    ]
    return lines


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    sys.exit(main(sys.argv[1:]))
