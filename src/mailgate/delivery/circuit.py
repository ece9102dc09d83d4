"""A circuit breaker per provider: a provider that keeps failing rests, then gets one probe.

closed --(threshold consecutive connection-level failures)--> open
open --(cooldown elapsed)--> half-open: one message may try it
half-open --success--> closed;  --failure--> open again
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


@dataclass
class CircuitBreaker:
    threshold: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[int, _Circuit] = field(default_factory=dict)

    def state(self, provider_id: int) -> CircuitState:
        circuit = self._circuits.get(provider_id)
        if circuit is None or circuit.opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - circuit.opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allows(self, provider_id: int) -> bool:
        """May a message use this provider now? Half-open lets exactly one through."""
        state = self.state(provider_id)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        circuit = self._circuits[provider_id]
        if circuit.probing:
            return False
        circuit.probing = True
        return True

    def release_probe(self, provider_id: int) -> None:
        """The probe granted by :meth:`allows` was not used after all."""
        circuit = self._circuits.get(provider_id)
        if circuit is not None:
            circuit.probing = False

    def succeeded(self, provider_id: int) -> bool:
        """Record a success; True when this closed an open circuit."""
        circuit = self._circuits.pop(provider_id, None)
        return circuit is not None and circuit.opened_at is not None

    def failed(self, provider_id: int) -> bool:
        """Record a connection-level failure; True when this opened the circuit."""
        circuit = self._circuits.setdefault(provider_id, _Circuit())
        circuit.failures += 1
        was_open = circuit.opened_at is not None
        if was_open or circuit.failures >= self.threshold:
            circuit.opened_at = self.clock()
            circuit.probing = False
        return not was_open and circuit.opened_at is not None
