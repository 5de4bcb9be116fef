"""Scope syntax (RFC 6749 §3.3) and audience values (RFC 8707 §2)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tokengate.core.errors import InvalidScope, InvalidTarget

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(value: str) -> frozenset[str]:
    """Split a space-delimited scope string, rejecting characters §3.3 forbids."""
    tokens = value.split(" ")
    if any(_SCOPE_TOKEN.fullmatch(tok) is None for tok in tokens):
        raise InvalidScope("malformed scope")
    return frozenset(tokens)


def format_scope(scopes: frozenset[str]) -> str:
    """Deterministic space-delimited rendering."""
    return " ".join(sorted(scopes))


def is_valid_scope_token(value: str) -> bool:
    """True when `value` is one RFC 6749 §3.3 scope-token."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


def check_resource(value: str) -> str:
    """RFC 8707 §2: an absolute URI without a fragment."""
    parts = urlsplit(value)
    if not parts.scheme or "#" in value or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    return value
