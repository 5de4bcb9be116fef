"""Circuit breaker and retry backoff, driven by passed-in time and draws (no clock, no sleep)."""

from __future__ import annotations

import pytest

from tokengate.resource.protocol.errors import CircuitOpen
from tokengate.resource.protocol.resilience import CircuitBreaker, RetryPolicy


def test_backoff_is_jittered_and_capped() -> None:
    """Full jitter: delay = draw * min(max_delay, base * 2**retry)."""
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.3)
    assert policy.delay(0, 1.0) == pytest.approx(0.1)
    assert policy.delay(1, 0.5) == pytest.approx(0.1)
    assert policy.delay(4, 1.0) == pytest.approx(0.3)
    assert policy.delay(4, 0.0) == 0.0


def test_opens_after_the_threshold_and_says_how_long() -> None:
    """N consecutive failures open the circuit; `retry_after` is the cooldown left."""
    breaker = CircuitBreaker(failure_threshold=2, cooldown=10.0)
    assert breaker.failure(0.0) is False
    assert breaker.failure(1.0) is True  # this one opened it
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as caught:
        breaker.allow(4.0)
    assert caught.value.retry_after == pytest.approx(7.0)
    assert breaker.failure(5.0) is False  # a call from before the opening keeps the cooldown


def test_success_resets_the_count() -> None:
    """Failures must be consecutive to open the circuit."""
    breaker = CircuitBreaker(failure_threshold=2, cooldown=1.0)
    breaker.failure(0.0)
    breaker.success()
    assert breaker.failure(0.0) is False
    assert breaker.state == "closed"


def test_failed_probe_reopens_and_concurrent_calls_wait() -> None:
    """Half-open lets one probe through; its failure restarts the cooldown."""
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0)
    breaker.failure(0.0)
    breaker.allow(5.0)  # the probe
    assert breaker.state == "half-open"
    with pytest.raises(CircuitOpen):
        breaker.allow(5.0)  # a second caller while the probe runs
    assert breaker.failure(5.0) is True
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.allow(9.9)


def test_stuck_probe_is_replaced_after_a_cooldown() -> None:
    """A probe that never reports (cancelled) does not keep the circuit open forever."""
    breaker = CircuitBreaker(failure_threshold=1, cooldown=5.0)
    breaker.failure(0.0)
    breaker.allow(5.0)
    breaker.allow(10.0)  # no exception: a new probe
    breaker.success()
    assert breaker.state == "closed"


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"failure_threshold": 0}, id="threshold-zero"),
        pytest.param({"cooldown": 0}, id="cooldown-zero"),
    ],
)
def test_configuration_errors(options: dict[str, float]) -> None:
    """A threshold below one or a cooldown that is not positive is refused."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(**options)  # type: ignore[arg-type]
