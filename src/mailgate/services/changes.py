"""Partial updates: ``UNSET`` marks a field a caller did not send (``None`` clears one)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

__all__ = ["UNSET", "Changes"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final[Any] = _Unset()


@dataclass(frozen=True)
class Changes:
    """Base of a service's change set: a frozen dataclass whose fields default to ``UNSET``."""

    def given(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not UNSET
        }
