"""The TLS client context of `--tls-ca-file` (calls to the issuer, the gateway's upstream):
exactly the CAs given, or a `ValueError` naming the file."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.support.tls import make_pki
from tokengate.resource.runtime.tls import client_context


def test_the_client_trusts_exactly_the_ca_file(tmp_path: Path) -> None:
    """With a CA file, the context trusts that CA and no system CA; it checks host names."""
    context = client_context(str(make_pki(tmp_path).ca))
    assert context is not None
    subjects = [dict(x[0] for x in ca["subject"]) for ca in context.get_ca_certs()]
    assert subjects == [{"commonName": "tokengate test CA"}]
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_no_ca_file_means_the_system_store() -> None:
    """Without a CA file there is no context of ours: the client library's default."""
    assert client_context(None) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read the CA file", id="missing"),
        pytest.param("", "holds no PEM certificate", id="empty"),
        pytest.param("junk\n", "holds no PEM certificate", id="not-pem"),
    ],
)
def test_an_unusable_ca_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    """A CA file that cannot be read or holds no certificate: refused."""
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        client_context(str(path))
