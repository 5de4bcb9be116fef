"""Fixtures shared by the resource-server tests."""

from __future__ import annotations

import pytest

from tokengate.resource.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A fake wall clock at a fixed epoch time."""
    return FakeClock()
