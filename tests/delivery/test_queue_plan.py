"""The claim reads the queue's own partial index (ix_messages_due), not the whole messages
table: its statuses are written into the SQL, since a partial index serves a query only when
the query states the index's condition itself (a bound parameter does not). Bound, the claim
scanned and sorted every message ever sent, and grew slower with the history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from mailgate.delivery.queue import claim_due
from mailgate.store.db import Database
from mailgate.store.models import utcnow


async def test_the_claim_uses_the_queue_index(fresh_database_url: str) -> None:
    on_sqlite = fresh_database_url.startswith("sqlite")

    def explain_the_claim(session: Session) -> str:
        connection = session.connection()
        executed: list[tuple[str, Any]] = []

        def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            executed.append((statement, parameters))

        event.listen(connection, "before_cursor_execute", capture)
        claim_due(session, worker_id="w", limit=10, lease_seconds=60, now=utcnow())
        event.remove(connection, "before_cursor_execute", capture)
        [(statement, parameters)] = [e for e in executed if "UPDATE messages" in e[0]]
        if not on_sqlite:  # so the plan shows an index whenever one can serve the query
            connection.execute(text("SET LOCAL enable_seqscan = off"))
        prefix = "EXPLAIN QUERY PLAN " if on_sqlite else "EXPLAIN "
        rows = connection.exec_driver_sql(prefix + statement, parameters)
        return "\n".join(str(row[-1] if on_sqlite else row[0]) for row in rows)

    database = Database(fresh_database_url)
    try:
        plan = await database.write(explain_the_claim)
    finally:
        await database.dispose()
    assert "ix_messages_due" in plan, plan
    if on_sqlite:
        assert "SCAN messages" not in plan and "TEMP B-TREE" not in plan, plan
