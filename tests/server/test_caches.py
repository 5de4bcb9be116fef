"""The server's in-process caches trust invalidations only while the event feed is current."""

from __future__ import annotations

from tokengate.core.client_auth import Authenticated
from tokengate.core.decoys import DECOY_CLIENT, DECOY_TOKEN
from tokengate.core.models import EventKind, RevocationEvent
from tokengate.core.responses import Response
from tokengate.server.auth_cache import AuthCache
from tokengate.server.token_cache import TokenCache

HEADER = "Basic Y2xpZW50OnNlY3JldA=="


class Feed:
    def __init__(self) -> None:
        self.current = True

    def __call__(self) -> bool:
        return self.current


def test_auth_cache_is_bypassed_while_the_feed_is_broken() -> None:
    """A cached authentication is not served while the event log cannot be read (a disable
    made elsewhere could not reach this process), and is again once the feed is back."""
    feed = Feed()
    cache = AuthCache(is_trusted=feed)
    cache.put(HEADER, Authenticated(DECOY_CLIENT, DECOY_CLIENT.secret_hash))
    assert cache.get(HEADER) is not None
    feed.current = False
    assert cache.get(HEADER) is None
    feed.current = True
    assert cache.get(HEADER) is not None


def test_auth_cache_forgets_a_client_on_its_events() -> None:
    """A disable event for the client drops its cached authentications."""
    cache = AuthCache()
    cache.put(HEADER, Authenticated(DECOY_CLIENT, DECOY_CLIENT.secret_hash))
    cache.on_events([RevocationEvent(1, EventKind.CLIENT_DISABLED, DECOY_CLIENT.client_id)])
    assert cache.get(HEADER) is None


def test_token_cache_is_bypassed_while_the_feed_is_broken() -> None:
    """A cached token lookup is not served while the event log cannot be read."""
    feed = Feed()
    cache = TokenCache(is_trusted=feed)
    cache.put("h", DECOY_TOKEN, Response(200, b"{}"), "rs")
    assert cache.get("h", "rs") is not None
    feed.current = False
    assert cache.get("h", "rs") is None
