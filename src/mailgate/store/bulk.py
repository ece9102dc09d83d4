"""Many rows through one statement, straight to the driver's ``executemany``; and the
dialect's ``INSERT ... ON CONFLICT`` (:func:`dialect_insert`).

``session.execute(statement, rows)`` spends most of its time per row and per value in
SQLAlchemy (parameter dictionaries, type processing, execution context), more than SQLite
spends writing them: on the hot paths (accepting mail, recording outcomes) it was two thirds
of the writer's time. Here the statement is compiled once per dialect, each row becomes a
tuple in the compiled order, the column types' own bind processors convert the values (so
what is stored is exactly what SQLAlchemy would store), and a value the rows share (the one
``now`` of a transaction) is converted once.

The rows are made ready before the transaction (:func:`insert_batch`, :func:`update_batch`)
and written in it (:meth:`Batch.run`): on SQLite the write lock, which every process on the
data directory shares, is then held for the driver's work alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

__all__ = ["Batch", "dialect_insert", "insert_batch", "update_batch"]

_Processor = Callable[[Any], Any] | None
_NO_CONSTANT: Any = object()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the statement's order
    processors: tuple[_Processor, ...]
    constants: tuple[Any, ...]  # a value the statement carries itself (``.values(x=None)``)


_compiled: dict[tuple[str, Hashable], _Compiled] = {}
_NOTHING = _Compiled("", (), (), ())  # the statement of a batch without rows: never run


@dataclass(frozen=True)
class Batch:
    """Rows of one statement, converted for the driver of one dialect."""

    dialect: str
    compiled: _Compiled
    params: list[tuple[Any, ...]]

    def run(self, session: Session) -> None:
        """Execute every row in the session's transaction."""
        if not self.params:
            return
        connection = session.connection()
        assert connection.dialect.name == self.dialect, "a batch runs in its own dialect"
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self.compiled.sql, self.params)
        finally:
            cursor.close()

    def keyed(self, name: str, keys: Mapping[Any, Any]) -> Batch:
        """The batch with each value of parameter ``name`` replaced by ``keys[value]`` (then
        converted): rows made ready before the values they refer to exist (the id the
        database gives a new row) name them by something known (its public id)."""
        if not self.params:
            return self
        at = self.compiled.names.index(name)
        process = self.compiled.processors[at] or (lambda value: value)
        return Batch(
            self.dialect,
            self.compiled,
            [(*row[:at], process(keys[row[at]]), *row[at + 1 :]) for row in self.params],
        )


def insert_batch(
    dialect: Dialect,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keyed: Collection[str] = (),
) -> Batch:
    """``rows`` (by column name, the same names in every row) to insert into ``table``.
    ``keyed``: columns whose values are keys for :meth:`Batch.keyed` to replace (not
    converted until then)."""
    columns = tuple(rows[0]) if rows else ()
    return _batch(
        dialect,
        (table, columns),
        lambda: insert(table).compile(dialect=dialect, column_keys=list(columns)),
        rows,
        keyed,
    )


def update_batch(
    dialect: Dialect, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> Batch:
    """``statement`` (its values given by named bind parameters) once per row."""
    return _batch(dialect, statement, lambda: statement.compile(dialect=dialect), rows)


def _batch(
    dialect: Dialect,
    key: Hashable,
    compile_statement: Callable[[], Any],
    rows: Sequence[Mapping[str, Any]],
    keyed: Collection[str] = (),
) -> Batch:
    if not rows:
        return Batch(dialect.name, _NOTHING, [])
    found = _compiled.get((dialect.name, key))
    if found is None:
        found = _compiled[(dialect.name, key)] = _compile(compile_statement(), dialect)
    first = rows[0]
    columns = [
        _converted(
            [row[name] for row in rows]
            if name in first or constant is _NO_CONSTANT
            else [constant] * len(rows),
            None if name in keyed else process,
        )
        for name, process, constant in zip(
            found.names, found.processors, found.constants, strict=True
        )
    ]
    return Batch(dialect.name, found, list(zip(*columns, strict=True)))


def _compile(compiled: Any, dialect: Dialect) -> _Compiled:
    names = tuple(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    # Columns whose Python-side default or onupdate SQLAlchemy would compute per execution:
    # not done here, so the rows must give them (a KeyError otherwise, never a NULL).
    computed = {c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)}
    return _Compiled(
        sql=str(compiled),
        names=names,
        processors=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
        constants=tuple(
            _NO_CONSTANT if b.required or name in computed else b.effective_value
            for name, b in zip(names, binds, strict=True)
        ),
    )


def _converted(values: list[Any], process: _Processor) -> list[Any]:
    if process is None:
        return values
    out: list[Any] = []
    last_in: Any = object()
    last_out: Any = None
    for value in values:
        if value is not last_in:
            last_in, last_out = value, process(value)
        out.append(last_out)
    return out


def dialect_insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` in the session's dialect (PostgreSQL or SQLite), which has
    ``on_conflict_do_nothing`` and ``on_conflict_do_update``."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
