"""Group commit: writes that arrive while a transaction is under way share the next one.

Many small transactions cost one fsync each (SQLite with ``synchronous=FULL``, PostgreSQL
with ``synchronous_commit=on``); a group of them costs one. Each caller waits until the
transaction that holds its item has committed, so "committed before answered" holds for
every one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """``commit(items)`` writes a group in one transaction and returns one result per item.

    When it raises one of ``isolate`` for a group of several, each item is committed alone in
    turn, so one caller's bad input fails only that caller; any other error fails the group.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 200,
        isolate: type[Exception] | tuple[type[Exception], ...] = (),
    ) -> None:
        self._commit_group = commit
        self.max_batch = max_batch
        self._isolate = isolate
        self._waiting: list[_Waiting[T, R]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            await self._commit(batch)

    async def _commit(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            results = await self._commit_group([w.item for w in batch])
        except self._isolate as exc:
            if len(batch) == 1:
                _settle(batch[0].future, error=exc)
                return
            for waiting in batch:  # find the item at fault: each alone, in turn
                await self._commit([waiting])
            return
        except BaseException as exc:
            for waiting in batch:
                _settle(waiting.future, error=exc)
            if not isinstance(exc, Exception):
                raise
            return
        for waiting, result in zip(batch, results, strict=True):
            if not waiting.future.done():  # done: the caller went away (cancelled)
                waiting.future.set_result(result)


def _settle(future: asyncio.Future[R], *, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
