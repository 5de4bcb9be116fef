"""The TLS client context for https:// calls to the issuer (and the gateway's upstream).

Without a CA file: the system's trust store (aiohttp's default). With one: only the CAs in it
(as curl's `--cacert`, mod_auth_openidc's `OIDCCABundlePath`), hostname checked. A missing,
unreadable or non-PEM file is a `ValueError` at construction, never a client that trusts less
or more than it was told.
"""

from __future__ import annotations

import ssl


def client_context(ca_file: str | None) -> ssl.SSLContext | None:
    """A TLS 1.2+ client context trusting exactly the CAs in `ca_file` (None: the system's)."""
    if ca_file is None:
        return None
    try:
        # Given a cafile, the default context loads no system CA (Python's ssl docs).
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except ssl.SSLError as exc:
        raise ValueError(f"the CA file {ca_file} holds no PEM certificate: {exc.reason}") from None
    except OSError as exc:
        raise ValueError(f"cannot read the CA file {ca_file}: {exc.strerror}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
