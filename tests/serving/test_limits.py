"""`ServerLimits`: safe defaults, bad values refused, the connection cap from the fd limit."""

from __future__ import annotations

import resource

import pytest

from tokengate.serving import ServerLimits, auto_max_connections
from tokengate.serving.limits import FD_RESERVE


def test_the_defaults_bound_everything() -> None:
    """Every bound is finite by default."""
    limits = ServerLimits()
    assert (limits.max_header_bytes, limits.max_headers) == (32 * 1024, 100)
    assert (limits.header_timeout, limits.keep_alive_timeout) == (10.0, 5)
    assert 0 < limits.connection_cap < 1_000_001


def test_the_cap_leaves_descriptors_for_the_rest() -> None:
    """`auto`: the soft RLIMIT_NOFILE less the reserve (at least half of it)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no descriptor limit in this process")
    assert auto_max_connections() == max(soft - FD_RESERVE, soft // 2)
    assert ServerLimits(max_connections=7).connection_cap == 7


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"max_header_bytes": 100}, id="tiny-head"),
        pytest.param({"max_headers": 0}, id="no-fields"),
        pytest.param({"header_timeout": 0}, id="no-deadline"),
        pytest.param({"keep_alive_timeout": 0}, id="no-idle"),
        pytest.param({"max_connections": 0}, id="no-connections"),
    ],
)
def test_values_that_disable_a_limit_are_refused(values: dict[str, float]) -> None:
    """A bound of zero would refuse everything or nothing: a `ValueError`."""
    with pytest.raises(ValueError, match="must be"):
        ServerLimits(**values)  # type: ignore[arg-type]
