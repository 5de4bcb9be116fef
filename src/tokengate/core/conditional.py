"""Conditional GET for documents that change now and then (RFC 9110 §8.8.3, §13.1.2).

A strong entity tag is derived from the exact bytes served, so two replicas serving the same
document agree on it without sharing any state, and a changed document can never keep an old
tag.
"""

from __future__ import annotations

import hashlib

_WEAK = "W/"


def entity_tag(body: bytes) -> str:
    """A strong entity tag (§8.8.3): 128 bits of the body's SHA-256, quoted."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(if_none_match: str | None, tag: str) -> bool:
    """True when `If-None-Match` names `tag` (or is `*`): answer 304 (§13.1.2).

    §13.1.2 compares weakly: `W/"x"` matches `"x"`. A header that cannot be parsed matches
    nothing, so the full document is sent (fail closed: never a 304 by mistake).
    """
    if if_none_match is None:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    if candidates == ["*"]:
        return True
    return any(c.removeprefix(_WEAK) == tag for c in candidates)
