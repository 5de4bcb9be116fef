"""TLS end to end: `tokengate serve --tls-cert/--tls-key` with a CA the test makes, its
metadata in https://, the resource-server library (`ca_file`) and Apache mod_auth_openidc
(`OIDCCABundlePath`) validating tokens against it; every server command refusing a bad pair."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.apache import apache, apache_root, require_apache
from tests.support.servers import create_client, free_port, running_process
from tests.support.tls import Pki, make_pki
from tokengate.resource import InvalidToken, ServiceUnavailable, Validator, ValidatorSettings

pytestmark = pytest.mark.e2e
TOKENGATE = [sys.executable, "-m", "tokengate"]


@dataclass(frozen=True)
class TlsIssuer:
    """A `tokengate serve` over https, its CA, an app client and an introspecting client."""

    url: str
    database: str
    pki: Pki
    trust: ssl.SSLContext
    app: tuple[str, str]
    rs: tuple[str, str]

    def token(self) -> str:
        """A fresh access token (client credentials)."""
        form = {"grant_type": "client_credentials"}
        answer = httpx.post(self.url + "/oauth2/token", data=form, auth=self.app, verify=self.trust)
        return str(answer.json()["access_token"])

    def revoke(self, token: str) -> None:
        """RFC 7009 revocation by the token's own client."""
        answer = httpx.post(
            self.url + "/oauth2/revoke", data={"token": token}, auth=self.app, verify=self.trust
        )
        assert answer.status_code == 200


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsIssuer]:
    """`tokengate serve` terminating TLS with a certificate from the test's own CA."""
    tmp = tmp_path_factory.mktemp("tls")
    pki = make_pki(tmp / "pki")
    database = f"sqlite:///{tmp / 'tokengate.db'}"
    app = create_client(database, "app", "read")
    rs = create_client(database, "rs", "", introspect=True)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    args = [*TOKENGATE, "serve", "--port", str(port), "--database", database,
            "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]  # fmt: skip
    trust = ssl.create_default_context(cafile=str(pki.ca))
    with running_process(args, url + "/healthz", tmp / "serve.log", verify=trust):
        yield TlsIssuer(url, database, pki, trust, app, rs)


def test_the_metadata_is_all_https(issuer: TlsIssuer) -> None:
    """RFC 8414 §2: the issuer derived from the TLS listener is https://, so is every endpoint."""
    metadata = httpx.get(
        issuer.url + "/.well-known/oauth-authorization-server", verify=issuer.trust
    ).json()
    assert metadata["issuer"] == issuer.url
    endpoints = [v for k, v in metadata.items() if k.endswith("_endpoint")]
    assert endpoints
    assert all(url.startswith(issuer.url + "/") for url in endpoints)


def test_plain_http_is_not_answered(issuer: TlsIssuer) -> None:
    """The TLS port does not speak plain HTTP."""
    with pytest.raises(httpx.HTTPError):
        httpx.get(issuer.url.replace("https://", "http://") + "/healthz", timeout=3)


def test_the_library_validates_over_https_with_the_ca_file(issuer: TlsIssuer) -> None:
    """The validator (discovery, introspection, revocation events) trusts the CA file: a live
    token is accepted, and refused once revoked (the event arrives over TLS too)."""
    asyncio.run(_validate_then_revoke(issuer))


async def _validate_then_revoke(issuer: TlsIssuer) -> None:
    client_id, secret = issuer.rs
    settings = ValidatorSettings(
        client_id=client_id, client_secret=secret, issuer=issuer.url, ca_file=str(issuer.pki.ca),
        max_ttl=600,
    )  # fmt: skip
    async with Validator(settings) as validator:
        token = issuer.token()
        claims = await validator.validate(token)
        assert claims.client_id == issuer.app[0]
        await asyncio.to_thread(issuer.revoke, token)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                await validator.validate(token)  # cached until the event evicts it
            except InvalidToken:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the revoked token was still accepted after 10 s")


def test_without_the_ca_file_the_library_refuses_the_server(issuer: TlsIssuer) -> None:
    """The system trust store does not know the test CA: 503, never an unchecked answer."""

    async def check() -> None:
        client_id, secret = issuer.rs
        settings = ValidatorSettings(
            client_id=client_id, client_secret=secret, issuer=issuer.url,
            revocation_events=False, failure_threshold=50,
        )  # fmt: skip
        async with Validator(settings) as validator:
            with pytest.raises(ServiceUnavailable):
                await validator.validate(issuer.token())

    asyncio.run(check())


def test_the_gateway_serves_https_and_trusts_the_ca_file_upstream(
    issuer: TlsIssuer, tmp_path: Path
) -> None:
    """`tokengate gateway` terminating TLS itself, forwarding to the https issuer with
    `--tls-ca-file`: answered through; without the CA file the upstream is refused (502)."""
    pki = issuer.pki
    path = "/.well-known/oauth-authorization-server"
    for trusted in (True, False):
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        args = [*TOKENGATE, "gateway", "--listen", f"127.0.0.1:{port}", "--upstream", issuer.url,
                "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]  # fmt: skip
        args += ["--tls-ca-file", str(pki.ca)] if trusted else []
        log = tmp_path / f"gateway-{port}.log"
        with running_process(args, url + "/_tokengate/healthz", log, verify=issuer.trust):
            answer = httpx.get(url + path, verify=issuer.trust)
        if trusted:
            assert answer.status_code == 200
            assert answer.json()["issuer"] == issuer.url
        else:
            assert answer.status_code == 502


OIDC = """\
OIDCCryptoPassphrase {passphrase}
OIDCCABundlePath {ca}
OIDCOAuthSSLValidateServer On
OIDCOAuthIntrospectionEndpoint {introspect}
OIDCOAuthIntrospectionEndpointAuth client_secret_basic
OIDCOAuthClientID {client_id}
OIDCOAuthClientSecret {client_secret}
<Location /protected>
    AuthType oauth20
    Require valid-user
</Location>
"""


def test_apache_mod_auth_openidc_validates_against_https(issuer: TlsIssuer) -> None:
    """Apache mod_auth_openidc as an OAuth 2.0 resource server, introspecting at the https
    endpoint with the test CA: a live token 200, a revoked one and garbage 401."""
    require_apache()
    live, revoked = issuer.token(), issuer.token()
    issuer.revoke(revoked)
    with apache_root() as root:
        (root / "ca.pem").write_bytes(issuer.pki.ca.read_bytes())
        (root / "htdocs" / "protected").mkdir(mode=0o755)
        (root / "htdocs" / "protected" / "page.txt").write_text("protected page\n")
        (root / "htdocs" / "up.txt").write_text("up\n")
        client_id, secret = issuer.rs
        body = OIDC.format(
            passphrase="tokengate-test-" + secret[-12:], ca=root / "ca.pem",
            introspect=issuer.url + "/oauth2/introspect", client_id=client_id,
            client_secret=secret,
        )  # fmt: skip
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with apache(body, root, port, base + "/up.txt"):
            statuses = {
                name: httpx.get(
                    base + "/protected/page.txt",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                for name, token in (("live", live), ("revoked", revoked), ("garbage", "junk"))
            }
            log = (root / "error.log").read_text(errors="replace")
    assert statuses["live"].status_code == 200, log[-2000:]
    assert statuses["live"].text == "protected page\n"
    assert statuses["revoked"].status_code == 401
    assert statuses["garbage"].status_code == 401
    assert "Bearer" in statuses["garbage"].headers.get("www-authenticate", "")


def test_serve_refuses_a_key_of_another_certificate(tmp_path: Path) -> None:
    """Fail closed: the process exits before it listens, naming the mismatch, no traceback
    (every command and every bad pair: `tests/cli/test_serving_options.py`)."""
    pki = make_pki(tmp_path / "pki")
    args = ["serve", "--database", f"sqlite:///{tmp_path / 'db'}",
            "--tls-cert", str(pki.cert), "--tls-key", str(pki.other_key)]  # fmt: skip
    assert "does not match the certificate" in _refused(args)


def test_serve_refuses_an_http_issuer_with_tls(tmp_path: Path) -> None:
    """A TLS listener announcing an http:// issuer would publish wrong metadata: refused."""
    pki = make_pki(tmp_path / "pki")
    args = ["serve", "--database", f"sqlite:///{tmp_path / 'db'}", "--issuer", "http://as.example",
            "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]  # fmt: skip
    assert "must be https:// when --tls-cert is given" in _refused(args)


def _refused(args: list[str]) -> str:
    """Run `tokengate ARGS`, which must exit non-zero without a traceback; its stderr."""
    proc = subprocess.run(
        [*TOKENGATE, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    return proc.stderr
