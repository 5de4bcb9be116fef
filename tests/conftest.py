"""Project-wide pytest configuration."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio (the loop uvicorn uses)."""
    return "asyncio"
