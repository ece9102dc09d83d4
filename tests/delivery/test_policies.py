"""Pure delivery policies: retry schedule, circuit breaker, a message's final status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailgate.delivery.circuit import CircuitBreaker, CircuitState
from mailgate.delivery.outcomes import final_status
from mailgate.delivery.retry_policy import RetryPolicy
from mailgate.domain import MessageStatus

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_retry_schedule_repeats_its_last_step_and_stops_at_expiry() -> None:
    policy = RetryPolicy([60, 300, 900])
    later = NOW + timedelta(hours=72)
    waits = [policy.next_attempt(failures=n, now=NOW, expires_at=later) for n in (1, 2, 3, 9)]
    assert [w - NOW for w in waits if w] == [timedelta(seconds=s) for s in (60, 300, 900, 900)]
    assert policy.next_attempt(failures=1, now=NOW, expires_at=NOW + timedelta(seconds=30)) is None
    with pytest.raises(ValueError):
        policy.next_attempt(failures=0, now=NOW, expires_at=later)


def test_circuit_opens_rests_probes_once_and_closes() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=10.0, clock=lambda: clock[0])
    assert [breaker.failed(7) for _ in range(3)] == [False, False, True]
    assert breaker.state(7) is CircuitState.OPEN and not breaker.allows(7)
    assert breaker.allows(8)  # other providers are not affected
    clock[0] = 10.5
    assert breaker.state(7) is CircuitState.HALF_OPEN
    assert breaker.allows(7) is True
    assert breaker.allows(7) is False  # one probe at a time
    breaker.failed(7)  # the probe failed: rest again
    assert breaker.state(7) is CircuitState.OPEN
    clock[0] = 21.0
    assert breaker.allows(7)
    assert breaker.succeeded(7) is True
    assert breaker.state(7) is CircuitState.CLOSED and breaker.allows(7)
    assert breaker.succeeded(7) is False


def test_a_released_probe_can_be_taken_again() -> None:
    clock = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=1.0, clock=lambda: clock[0])
    breaker.failed(1)
    clock[0] = 2.0
    assert breaker.allows(1)
    breaker.release_probe(1)
    assert breaker.allows(1)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["delivered", "delivered"], MessageStatus.DELIVERED),
        (["delivered", "bounced"], MessageStatus.PARTIAL),
        (["delivered", "rejected"], MessageStatus.PARTIAL),
        (["bounced", "rejected"], MessageStatus.BOUNCED),
        (["bounced", "failed"], MessageStatus.BOUNCED),
        (["failed"], MessageStatus.FAILED),
        (["rejected", "rejected"], MessageStatus.REJECTED),
        (["cancelled"], MessageStatus.CANCELLED),
    ],
)
def test_final_status(statuses: list[str], expected: MessageStatus) -> None:
    assert final_status(statuses) is expected
