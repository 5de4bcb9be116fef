"""The public names of `tokengate.resource`: a small, guarded surface."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokengate.resource as resource

EXPECTED = {
    "DEFAULT_TOKEN_HEADER",
    "BearerError",
    "BearerHTTPException",
    "CachedClaims",
    "InsufficientScope",
    "IntrospectionError",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "MemoryReplayStore",
    "MissingToken",
    "Policy",
    "ProofPolicy",
    "RedisReplayStore",
    "RedisTokenCache",
    "ReplayStore",
    "Requirement",
    "RetryPolicy",
    "Rule",
    "ServiceUnavailable",
    "SharedTokenCache",
    "StreamTimeouts",
    "Timeouts",
    "TokenClaims",
    "TokenGateMiddleware",
    "TokenGateWSGIMiddleware",
    "Validator",
    "ValidatorSettings",
    "bearer_exception_handler",
    "create_validator",
    "require_scopes",
}
LAZY = {
    "BearerHTTPException": "tokengate.resource.adapters.fastapi",
    "bearer_exception_handler": "tokengate.resource.adapters.fastapi",
    "require_scopes": "tokengate.resource.adapters.fastapi",
    "RedisTokenCache": "tokengate.resource.runtime.redis",
    "RedisReplayStore": "tokengate.resource.runtime.redis",
}
HEAVY = ("redis", "uvicorn", "psycopg", "prometheus_client")
SRC = Path(resource.__file__).resolve().parents[2]


def test_public_names_are_guarded() -> None:
    """`__all__` changes only on purpose, and every listed name exists."""
    assert set(resource.__all__) == EXPECTED
    assert resource.__all__ == sorted(resource.__all__, key=lambda n: (not n.isupper(), n))
    for name in resource.__all__:
        assert getattr(resource, name) is not None


@pytest.mark.parametrize(("name", "module"), sorted(LAZY.items()))
def test_lazy_names_resolve_to_their_module(name: str, module: str) -> None:
    """Names needing an optional dependency load on first use, as the module's own object."""
    found = getattr(resource, name)
    assert found.__module__ == module
    assert found is getattr(sys.modules[module], name)


def test_unknown_names_are_attribute_errors() -> None:
    """The lazy loader does not invent names (`hasattr` and `from ... import` stay honest)."""
    assert not hasattr(resource, "SyncValidator")
    with pytest.raises(AttributeError, match="no attribute 'Stats'"):
        resource.Stats  # noqa: B018


def test_import_pulls_in_no_optional_dependency() -> None:
    """`import tokengate.resource` imports neither Redis, uvicorn, psycopg nor Prometheus."""
    code = (
        "import sys, tokengate.resource\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"
