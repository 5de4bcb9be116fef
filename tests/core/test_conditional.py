"""Entity tags and If-None-Match (RFC 9110 §8.8.3, §13.1.2)."""

from __future__ import annotations

import pytest

from tokengate.core.conditional import entity_tag, none_match

TAG = entity_tag(b'{"issuer":"https://as.example"}')


def test_tag_is_strong_and_follows_the_bytes() -> None:
    """§8.8.3: a quoted opaque tag, no `W/`; one changed byte changes it."""
    assert TAG.startswith('"')
    assert TAG.endswith('"')
    assert len(TAG) == 34
    assert entity_tag(b'{"issuer":"https://as.example"}') == TAG
    assert entity_tag(b'{"issuer":"https://as.exampl3"}') != TAG


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param(TAG, True, id="same"),
        pytest.param(f'"x", {TAG}', True, id="rfc9110-13.1.2-in-a-list"),
        pytest.param(f"W/{TAG}", True, id="rfc9110-13.1.2-weak-comparison"),
        pytest.param("*", True, id="rfc9110-13.1.2-star"),
        pytest.param('"x", *', False, id="star-inside-a-list-is-not-star"),
        pytest.param(TAG.strip('"'), False, id="unquoted"),
        pytest.param("", False, id="empty"),
    ],
)
def test_none_match(header: str | None, matches: bool) -> None:
    """Only a listed tag (weakly compared) or a lone `*` means "not modified"."""
    assert none_match(header, TAG) is matches
