"""Schema-driven fuzzing: schemathesis generates requests from our OpenAPI document and checks
a real server process's answers against it (status codes, content types, response schemas)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import ignored_auth, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from tests.support.servers import ServerProcess, create_client, run_cli, running_server
from tokengate.server.app import openapi_document

pytestmark = pytest.mark.e2e
# 413 (a body past the 16 KiB limit) is a rejection too: schemathesis' default list lacks it
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
              "5xx"]  # fmt: skip
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
)
SCHEMA = schemathesis.openapi.from_dict(json.loads(openapi_document()), config=CONFIG)
EXAMPLES = int(os.environ.get("TOKENGATE_SCHEMATHESIS_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    """A real server with one introspecting client and an admin token; yields it, a Basic
    header value and a Bearer one (for registration and the management API)."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    db = f"sqlite:///{tmp / 'st.db'}"
    cid, secret = create_client(db, "rs", "read write", introspect=True)
    made = run_cli("admin-tokens", "create", "--admin", "--database", db, "--json")
    bearer = "Bearer " + json.loads(made)["admin_token"]
    import base64  # noqa: PLC0415

    basic = "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()
    # Generated requests fail authentication by the hundred: lift the throttle so that they
    # reach the endpoints' own validation instead of stopping at 429.
    with running_server(
        db, log_dir=tmp, extra_args=["--max-auth-failures", "100000", "100000"]
    ) as server:
        yield server, basic, bearer


@SCHEMA.exclude(path="/oauth2/events").parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_responses_conform(case: schemathesis.Case, live: tuple[ServerProcess, str, str]) -> None:
    """Every generated request: no 5xx, documented status, content type and body schema.

    Two stock checks do not apply to OAuth: a well-formed token request may still be refused
    for what it asks (invalid_scope, invalid_target: 400 by RFC 6749 §5.2), and `ignored_auth`
    probes endpoints that accept credentials in the body as well (client_secret_post).
    Registration and the management API get the admin token (RFC 7592 client URIs keep the
    generated value: their registration access tokens cannot be guessed).
    """
    server, basic, bearer = live
    headers = {"Authorization": basic} if case.path.startswith("/oauth2/") else None
    if case.path == "/oauth2/register" or case.path.startswith("/admin/api"):
        headers = {"Authorization": bearer}
    elif case.path.startswith("/oauth2/register/"):
        headers = None
    case.call_and_validate(
        base_url=server.base_url, headers=headers, timeout=10,
        excluded_checks=[positive_data_acceptance, ignored_auth],
    )  # fmt: skip


@SCHEMA.include(path="/oauth2/events").parametrize()
@settings(max_examples=10, deadline=None)
def test_event_stream_rejections(
    case: schemathesis.Case, live: tuple[ServerProcess, str, str]
) -> None:
    """The SSE endpoint refuses bad credentials (401, or 429 once throttled), malformed
    Last-Event-ID (400) or other methods (405) cleanly."""
    server, _, _ = live
    response = case.call(base_url=server.base_url, timeout=5)
    assert response.status_code in (400, 401, 405, 429), (response.request.method, response.text)


def test_logs_clean(live: tuple[ServerProcess, str, str]) -> None:
    """After the fuzzing, the server log holds no traceback."""
    server, _, _ = live
    assert "Traceback" not in Path(server.log_path).read_text(errors="replace")
