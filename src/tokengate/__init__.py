"""tokengate: opaque OAuth 2.0 access tokens with introspection, revocation and caching."""
