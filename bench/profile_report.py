"""Read py-spy's raw (folded) stacks: a text summary of where the time goes, and a flame graph.

``python bench/profile_report.py bench/profile.folded [out.svg]`` prints the summary (and
writes the SVG). Each input line is ``thread (tid);frame;frame;... samples`` where a frame is
``function (path:line)``, as ``py-spy record --threads --format raw`` writes it. Only samples
of active threads are in it (py-spy leaves idle ones out), so shares are shares of CPU work.
"""

from __future__ import annotations

import html
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Library buckets by the frame's path as py-spy prints it (relative to its sys.path entry),
# first matching prefix wins.
PACKAGES: tuple[tuple[str, str], ...] = (
    ("mailgate/api/", "mailgate.api"),
    ("mailgate/services/", "mailgate.services"),
    ("mailgate/delivery/", "mailgate.delivery"),
    ("mailgate/store/", "mailgate.store"),
    ("mailgate/security/", "mailgate.security"),
    ("mailgate/", "mailgate (other)"),
    ("sqlalchemy/", "sqlalchemy"),
    ("aiosqlite/", "aiosqlite"),
    ("asyncpg/", "asyncpg"),
    ("pydantic", "pydantic"),
    ("fastapi/", "fastapi"),
    ("starlette/", "starlette"),
    ("anyio/", "anyio"),
    ("uvicorn/", "uvicorn"),
    ("aiosmtplib/", "aiosmtplib"),
    ("structlog/", "structlog"),
    ("rich/", "rich (log rendering)"),
    ("pygments/", "pygments (log rendering)"),
    ("limits/", "limits (rate limiter)"),
    ("email_validator/", "email_validator"),
    ("cryptography/", "cryptography"),
    ("email/", "stdlib email (MIME)"),
    ("asyncio/", "stdlib asyncio"),
    ("logging/", "stdlib logging"),
    ("json/", "stdlib json"),
    ("uvloop/", "uvloop"),
)


def package_of(path: str) -> str:
    rel = short_path(path)
    for prefix, name in PACKAGES:
        if rel.startswith(prefix):
            return name
    if "/" not in rel and rel.endswith(".py"):
        return "stdlib (other)"
    return rel.split("/", 1)[0] or "other"


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", "/lib/python3.12/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def parse(folded: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def split_frame(frame: str) -> tuple[str, str]:
    match = FRAME.match(frame)
    if not match:
        return frame, ""
    return match["func"], match["file"] or ""


def label(frame: str) -> str:
    func, path = split_frame(frame)
    return f"{func} ({short_path(path)})" if path else func


IDLE_NATIVE = (
    "PyThread_acquire_lock_timed",
    "epoll_wait",
    "uv__io_poll",
    "select_epoll_poll",
    "_queue_SimpleQueue_get",
)
# Under a C call that released the GIL, a thread parked on a condition variable is waiting
# to take the GIL back (take_gil is inlined in libpython, so this is what shows).
GIL_NATIVE = ("take_gil", "pthread_cond_timedwait", "pthread_cond_wait")
# Python lines that wait (when py-spy runs without --native): the leaf frame's source line.
IDLE_LINE = re.compile(r"\.get\(|\.wait\(|\.poll\(|\.select\(|\.acquire\(|run_until_complete\(")


def is_python(frame: str) -> bool:
    return ".py:" in frame or frame.endswith(".py)")


def _source_line(frame: str) -> str:
    """The source line a Python frame is at, found on this interpreter's path."""
    match = FRAME.match(frame)
    if not match or not match["line"]:
        return ""
    rel = match["file"]
    for base in sys.path:
        path = Path(base) / rel if not rel.startswith("/") else Path(rel)
        if path.is_file():
            lines = path.read_text(errors="replace").splitlines()
            number = int(match["line"])
            return lines[number - 1] if 0 < number <= len(lines) else ""
    return ""


_IDLE_CACHE: dict[str, bool] = {}


def classify(frames: list[str]) -> str:
    """'idle' (waiting for work: a queue, a lock, epoll), 'gil' (runnable, waiting for the
    GIL), or 'busy'."""
    names = {split_frame(f)[0] for f in frames}
    if any(n in names for n in IDLE_NATIVE):
        return "idle"
    if split_frame(frames[-1])[0] in GIL_NATIVE or "take_gil" in names:
        return "gil"
    leaf = frames[-1]
    if is_python(leaf):
        if leaf not in _IDLE_CACHE:
            _IDLE_CACHE[leaf] = bool(IDLE_LINE.search(_source_line(leaf)))
        if _IDLE_CACHE[leaf]:
            return "idle"
    return "busy"


def c_activity(frames: list[str]) -> str | None:
    """What the C code under the innermost Python frame is doing, when it is notable."""
    last_python = max((i for i, f in enumerate(frames) if is_python(f)), default=-1)
    below = frames[last_python + 1 :]
    names = [split_frame(f)[0] for f in below]
    files = " ".join(below)
    if any(n in ("fdatasync", "fsync") for n in names):
        return "fsync (SQLite commit)"
    if "sqlite3InvokeBusyHandler" in names:
        return "SQLite busy handler: sleeping for the write lock"
    if "libsqlite3" in files or any(n.startswith("sqlite3") for n in names):
        if "pysqlite_connection_commit" in names:
            return "SQLite commit (C, without fsync)"
        return "SQLite statement (C)"
    if "libssl" in files or "libcrypto" in files:
        return "OpenSSL"
    if "_queue_SimpleQueue_put_nowait" in names or "sem_post" in names:
        return "handing a call to an aiosqlite thread (sem_post: wake-up, context switch)"
    if "uv_run" in names:
        return "uvloop internals"
    return None


def innermost_python(frames: list[str]) -> str | None:
    for frame in reversed(frames):
        if is_python(frame):
            return frame
    return None


PHASES: tuple[tuple[str, str], ...] = (
    ("Worker.claim", "delivery: claim (queue UPDATE ... RETURNING)"),
    ("Worker._load", "delivery: load message"),
    ("Worker._routes_for", "delivery: routes"),
    ("SmtpPool.", "delivery: SMTP (pool, wire)"),
    ("Worker._send", "delivery: send (router, other)"),
    ("Worker._record", "delivery: record outcome"),
    ("Worker.", "delivery: other"),
    ("RequestResponseCycle.run_asgi", "HTTP request (ASGI app)"),
    ("HttpToolsProtocol.", "HTTP parsing/writing (uvicorn)"),
    ("H11Protocol.", "HTTP parsing/writing (uvicorn)"),
)


DB_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("Session.commit", "commit"),
    ("Session._flush", "flush: ORM INSERT/UPDATE (unit of work)"),
    ("Session._get_impl", "Session.get (by primary key)"),
    ("Session._execute_internal", "Session.execute (SELECT, UPDATE statements)"),
    ("AsyncSession.close", "session close"),
    ("Session.close", "session close"),
    ("_ConnectionFairy", "connection pool"),
    ("QueuePool", "connection pool"),
    ("Pool.", "connection pool"),
)


def db_operation(frames: list[str]) -> str | None:
    """The SQLAlchemy/aiosqlite operation a main-thread sample is in, if any."""
    paths = [short_path(split_frame(f)[1]) for f in frames]
    if not any(p.startswith(("sqlalchemy/", "aiosqlite/", "asyncpg/")) for p in paths):
        return None
    names = [split_frame(f)[0] for f in frames]
    for marker, operation in DB_OPERATIONS:
        if any(n.startswith(marker) for n in names):
            return operation
    return "other (engine, greenlet bridge, driver adapter)"


def phase_of(frames: list[str]) -> str:
    names = [split_frame(f)[0] for f in frames]
    for marker, phase in PHASES:
        if any(n.startswith(marker) for n in names):
            return phase
    return "event loop, other"


def report(folded: Path, top: int = 25) -> str:
    """The summary, one section per process when py-spy followed subprocesses (stacks then
    begin with ``process <pid>:"<command>"`` frames: the server's, then its child's)."""
    by_process: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    for frames, count in parse(folded):
        processes = [f for f in frames if f.startswith("process ")]
        rest = [f for f in frames if not f.startswith("process ")]
        by_process[_process_role(processes[-1]) if processes else ""].append((rest, count))
    if len(by_process) == 1:
        return _report(next(iter(by_process.values())), folded.name, top)
    return "\n".join(
        f"=== {role} ===\n" + _report(stacks, folded.name, top)
        for role, stacks in sorted(by_process.items())
    )


def _process_role(frame: str) -> str:
    if " worker" in frame:
        return "delivery process (mailgate worker)"
    return "API process (mailgate serve)"


def _report(stacks: list[tuple[list[str], int]], source: str, top: int) -> str:
    total = sum(count for _, count in stacks)
    if not total:
        return "no samples"
    states: dict[str, Counter[str]] = defaultdict(Counter)  # thread kind -> state -> samples
    phases: Counter[str] = Counter()
    db_ops: Counter[str] = Counter()
    main_pkg: Counter[str] = Counter()
    main_fn: Counter[str] = Counter()
    main_incl: Counter[str] = Counter()
    main_mailgate: Counter[str] = Counter()
    sqlite_work: Counter[str] = Counter()
    for frames, count in stacks:
        thread, body = (frames[0], frames[1:]) if frames[0].startswith("thread") else ("", frames)
        if not body:
            continue
        kind = _thread_kind(thread, body)
        state = classify(body)
        c_part = c_activity(body)
        if c_part and c_part.startswith("SQLite busy handler"):
            state = "lock"  # runnable code would be here, but it sleeps in SQLite's busy loop
        states[kind][state] += count
        if kind.startswith("aiosqlite"):
            if state in ("busy", "lock"):
                leaf = innermost_python(body) or ""
                if c_part is None and leaf.startswith("_connection_worker_thread"):
                    c_part = "a SQLite call (C frames not recorded: --profile-native splits it)"
                sqlite_work[c_part or "Python (aiosqlite thread loop, callbacks)"] += count
            elif state == "gil":
                sqlite_work["waiting for the GIL (after a SQLite call)"] += count
            continue
        if not kind.startswith("main") or state != "busy":
            continue
        operation = db_operation(body)
        phase = phase_of(body)
        if phase == "event loop, other" and operation is not None:
            phase = "database calls (in greenlets: the Mailgate caller is not on the stack)"
        phases[phase] += count
        db_ops[operation or "not in the database layer"] += count
        leaf = innermost_python(body) or body[-1]
        main_fn[label(leaf) + (f"  [{c_part}]" if c_part else "")] += count
        main_pkg[c_part or package_of(split_frame(leaf)[1])] += count
        for name in {label(f) for f in body if is_python(f)}:
            main_incl[name] += count
        for frame in reversed(body):
            if short_path(split_frame(frame)[1]).startswith("mailgate/"):
                main_mailgate[label(frame)] += count
                break
        else:
            main_mailgate["(no Mailgate frame: greenlet, event loop, library)"] += count

    main_busy = states["main thread (event loop)"]["busy"]

    def table(title: str, counts: Counter[str], limit: int = top, base: int = 0) -> list[str]:
        whole = base or sum(counts.values()) or 1
        rows = [f"\n{title} ({whole} samples = 100%)"]
        for name, count in counts.most_common(limit):
            rows.append(f"  {100 * count / whole:5.1f}%  {name}")
        return rows

    out = [
        f"py-spy: {total} samples at 100 Hz per thread ({source}). States per thread "
        "group (busy = running or in a system call; lock = sleeping in SQLite's busy "
        "handler; gil = waiting for the GIL; idle = waiting for work, left out below):"
    ]
    for kind, counts in sorted(states.items(), key=lambda kv: -sum(kv[1].values())):
        shown = ", ".join(f"{state} {n}" for state, n in counts.most_common())
        out.append(f"  {kind}: {shown}")
    out += table("Main thread (the event loop: the serial part), busy samples by phase", phases)
    out += table(
        "Main thread, busy samples in the database layer (SQLAlchemy, aiosqlite/asyncpg) by "
        "operation. SQLAlchemy's async mode runs them in greenlets whose stacks do not show "
        "the Mailgate caller, so the phase table above counts them as 'database calls'",
        db_ops,
    )
    out += table(
        "Main thread, self time by library (innermost Python frame's package, or "
        "the C work under it)",
        main_pkg,
    )
    out += table("Main thread, self time by function (innermost Python frame)", main_fn)
    out += table("Main thread, inclusive time by function", main_incl, top + 15, main_busy)
    out += table("Main thread, innermost Mailgate frame", main_mailgate)
    out += table("aiosqlite connection threads: what the non-idle samples do", sqlite_work)
    return "\n".join(out) + "\n"


def _thread_kind(thread: str, body: list[str]) -> str:
    text = thread + " " + " ".join(body)
    if "_connection_worker_thread" in text:
        return "aiosqlite connection threads (SQLite calls)"
    if "MainThread" in thread or "Runner.run" in text or "run_forever" in text:
        return "main thread (event loop)"
    if "AnyIO worker thread" in thread or "_worker (concurrent" in text:
        return "thread pools (to_thread, run_in_executor)"
    return "other threads"


# --- flame graph -------------------------------------------------------------------------


def write_flamegraph(folded: Path, svg: Path, width: int = 1800) -> None:
    """A plain SVG flame graph (no scripts): hover a box for its name and share."""
    root: dict[str, object] = {"n": 0, "kids": {}}
    for frames, count in parse(folded):
        node = root
        node["n"] = int(node["n"]) + count  # type: ignore[call-overload]
        for frame in frames:
            kids: dict[str, dict[str, object]] = node["kids"]  # type: ignore[assignment]
            node = kids.setdefault(frame, {"n": 0, "kids": {}})
            node["n"] = int(node["n"]) + count  # type: ignore[call-overload]
    total = int(root["n"]) or 1  # type: ignore[call-overload]
    row = 17
    boxes: list[str] = []
    depth_max = 0

    def walk(node: dict[str, object], x: float, depth: int) -> None:
        nonlocal depth_max
        kids: dict[str, dict[str, object]] = node["kids"]  # type: ignore[assignment]
        for frame, kid in sorted(kids.items()):
            n = int(kid["n"])  # type: ignore[call-overload]
            w = width * n / total
            if w >= 0.5:
                depth_max = max(depth_max, depth)
                boxes.append(_box(frame, x, depth, w, n, total, row))
                walk(kid, x, depth + 1)
            x += w

    walk(root, 0.0, 0)
    height = (depth_max + 1) * row + 30
    svg.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">\n'
        f'<rect width="100%" height="100%" fill="#fff"/>\n'
        f'<text x="4" y="14">Mailgate under load: py-spy, {total} samples; callers above '
        f"callees (hover a box for its share)</text>\n" + "\n".join(boxes) + "\n</svg>\n"
    )


_COLOURS = {
    "mailgate": "#f2a65a",
    "sqlalchemy": "#9ecae1",
    "aiosqlite": "#6baed6",
    "pydantic": "#c7a0e0",
    "fastapi": "#a1d99b",
    "starlette": "#a1d99b",
    "uvicorn": "#74c476",
    "aiosmtplib": "#fdd0a2",
    "email": "#fc9272",
    "asyncio": "#d9d9d9",
}


def _box(frame: str, x: float, depth: int, w: float, n: int, total: int, row: int) -> str:
    name = label(frame)
    package = package_of(split_frame(frame)[1])
    colour = next((c for key, c in _COLOURS.items() if key in package), "#e0e0e0")
    title = html.escape(f"{name}: {n} samples, {100 * n / total:.1f}%")
    y = 20 + depth * row
    text = ""
    chars = int(w / 7)
    if chars >= 4:
        shown = name if len(name) <= chars else name[: chars - 2] + ".."
        text = f'<text x="{x + 2:.1f}" y="{y + row - 5}">{html.escape(shown)}</text>'
    return (
        f'<g><title>{title}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
        f'height="{row - 1}" fill="{colour}"/>{text}</g>'
    )


if __name__ == "__main__":
    source = Path(sys.argv[1])
    print(report(source))
    if len(sys.argv) > 2:
        write_flamegraph(source, Path(sys.argv[2]))
