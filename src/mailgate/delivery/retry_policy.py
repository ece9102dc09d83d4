"""When to try a deferred message again, and when to give up on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[n]`` seconds after the (n+1)-th soft failure; the last entry repeats."""

    schedule: Sequence[int]

    def next_attempt(
        self, *, failures: int, now: datetime, expires_at: datetime
    ) -> datetime | None:
        """The time of the next try, or None when the message would be past its expiry."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        delay = self.schedule[min(failures, len(self.schedule)) - 1] if self.schedule else 60
        due = now + timedelta(seconds=delay)
        return None if due >= expires_at else due
