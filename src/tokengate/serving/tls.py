"""The TLS server context of `--tls-cert` / `--tls-key`, checked before the server starts.

Fail closed: a missing or unreadable file, a file that is not PEM, an encrypted key (there is
no one to type its passphrase) or a key that does not belong to the certificate is a
`ValueError` naming the problem, never a server that starts without TLS or dies later.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context holding `cert` (a PEM chain, leaf first) and its `key`."""
    for path, what in ((cert, "certificate"), (key, "private key")):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read the TLS {what} {path}: {exc.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except ssl.SSLError as exc:
        raise ValueError(_explain(exc, cert, key)) from None
    except _Encrypted:
        raise ValueError(f"the TLS private key {key} is encrypted; give it unencrypted") from None
    return context


class _Encrypted(Exception):
    """The key asked for a passphrase."""


def _no_passphrase() -> str:
    raise _Encrypted


def _explain(exc: ssl.SSLError, cert: Path, key: Path) -> str:
    reason = (exc.reason or str(exc)).lower().replace("_", " ")
    if "mismatch" in reason:
        return f"the TLS private key {key} does not match the certificate {cert}"
    return f"cannot load the TLS certificate {cert} with the key {key}: {reason}"
