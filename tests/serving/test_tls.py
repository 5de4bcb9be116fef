"""The TLS server context of `--tls-cert`/`--tls-key`: fail closed, with a message naming
the file and the problem."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.support.tls import Pki, encrypted_key, make_pki
from tokengate.serving import server_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA and a server certificate it signed."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_a_matching_pair_loads(pki: Pki) -> None:
    """The certificate and its key make a TLS 1.2+ server context."""
    context = server_context(pki.cert, pki.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_missing_certificate_is_named(pki: Pki, tmp_path: Path) -> None:
    """A certificate file that is not there: refused, the path in the message."""
    with pytest.raises(ValueError, match=r"cannot read the TLS certificate .*missing\.pem"):
        server_context(tmp_path / "missing.pem", pki.key)


def test_an_unreadable_key_is_named(pki: Pki, tmp_path: Path) -> None:
    """A key path that is a directory: refused."""
    with pytest.raises(ValueError, match="cannot read the TLS private key"):
        server_context(pki.cert, tmp_path)


def test_a_key_of_another_certificate_is_refused(pki: Pki) -> None:
    """A key that does not belong to the certificate: refused as a mismatch."""
    with pytest.raises(ValueError, match="does not match the certificate"):
        server_context(pki.cert, pki.other_key)


def test_an_encrypted_key_is_refused_without_a_prompt(pki: Pki, tmp_path: Path) -> None:
    """A passphrase-protected key: refused (no terminal prompt for a passphrase)."""
    with pytest.raises(ValueError, match="is encrypted"):
        server_context(pki.cert, encrypted_key(pki, tmp_path))


def test_a_file_that_is_not_pem_is_refused(pki: Pki, tmp_path: Path) -> None:
    """Garbage where the certificate should be: refused."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        server_context(garbage, pki.key)
