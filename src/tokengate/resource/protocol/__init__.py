"""The resource server's sans-I/O protocol layer: no socket, clock, lock, sleep or framework.

| module | RFC | what it decides |
|---|---|---|
| `resolver` | RFC 6750 §2.1, §3.1 | the one token a request carries (two headers read) |
| `policy` | — | which paths are protected and which scopes each route needs |
| `decision` | RFC 7662 §4, RFC 6750 §3.1 | allow, 401 `invalid_token` or 403 `insufficient_scope` |
| `claims` | RFC 7662 §2.2 | the validated introspection response as `TokenClaims` |
| `freshness` | RFC 7662 §4 | how long an answer may be reused (never past `exp`) |
| `rfc7662` | RFC 7662 §2, RFC 6749 §2.3.1, RFC 8414 §3 | introspection and metadata wire |
| `revocations` | RFC 8414 §3 | where events are, how to subscribe, what each evicts |
| `sse` | WHATWG HTML §9.2.6 | server-sent-events parsing (line ends, `id`, `retry`, bounds) |
| `resilience` | — | circuit breaker and retry backoff (time and randomness passed in) |
| `responses` | RFC 6750 §3 | the neutral error response every adapter sends |
| `errors` | RFC 6750 §3.1 | the exception tree |

The event payload itself is `tokengate.core.wire`'s, shared with the authorization server.
"""
