"""A DPoP-protected request vs a Bearer one at the example resource server (RFC 9449 §7).

One run, loopback only: one authorization server (SQLite) and one example resource server.
Both tokens come from the same client and are cached by the resource server after their first
use, so what differs is the proof: a DPoP request carries a fresh proof (ES256, a new `jti`)
that is verified (signature, `htm`, `htu`, `iat`, `ath`, key = `cnf.jkt`) and recorded against
replay on every request. wrk sends both through the same Lua `request()` path (a proof per
request read from a file made just before the round, never reused), alternating rounds; the
median ratio DPoP/Bearer is printed (target >= 0.7).

    .venv/bin/python bench/dpop.py [--rounds 5] [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from pathlib import Path

import httpx
from _harness import (
    PROTECTED_PATH,
    Row,
    alternate,
    authorization_server,
    create_client,
    example_resource_server,
    lua_string,
    median_ratio,
    run_wrk,
    wrk_arguments,
)

from tokengate.resource.protocol.rfc7662 import ClientCredentials
from tokengate.resource.testing import DPoPKey

TARGET = 0.7
# Proofs made per expected request: a round never runs out (a reused proof is a 401).
HEADROOM = 2.0


def token(as_url: str, client: ClientCredentials, proof: str | None = None) -> str:
    """A client-credentials token; DPoP-bound when `proof` is given."""
    headers = {} if proof is None else {"DPoP": proof}
    answer = httpx.post(
        as_url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        headers=headers,
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )
    answer.raise_for_status()
    expected = "DPoP" if proof is not None else "Bearer"
    assert answer.json()["token_type"] == expected, answer.text
    return str(answer.json()["access_token"])


def request_script(directory: Path, name: str, authorization: str, proofs: Path | None) -> Path:
    """A wrk script building each request in `request()`; with `proofs`, one line per request."""
    lines = ["local proofs, n = {}, 0"]
    if proofs is not None:
        lines.append(
            f"for line in io.lines({lua_string(str(proofs))}) do proofs[#proofs + 1] = line end"
        )
    lines += [
        "request = function()",
        f'  local headers = {{["Authorization"] = {lua_string(authorization)}}}',
        "  if #proofs > 0 then",
        "    n = n + 1",
        '    headers["DPoP"] = proofs[n]',
        "  end",
        f'  return wrk.format("GET", {lua_string(PROTECTED_PATH)}, headers)',
        "end",
    ]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


class DPoPRun:
    """One DPoP round: fresh proofs for the expected number of requests, then wrk."""

    def __init__(self, rs_url: str, key: DPoPKey, bound: str, tmp: Path, args: argparse.Namespace):
        self.rs_url, self.key, self.bound, self.tmp, self.args = rs_url, key, bound, tmp, args
        self.expected_rps = 5000.0

    def __call__(self) -> float:
        count = int(self.expected_rps * self.args.seconds * HEADROOM) + 1000
        url = self.rs_url + PROTECTED_PATH
        proofs = self.tmp / "proofs.txt"
        proofs.write_text(
            "\n".join(self.key.proof("GET", url, token=self.bound) for _ in range(count))
        )
        script = request_script(self.tmp, "dpop", f"DPoP {self.bound}", proofs)
        rps = run_wrk(
            url, connections=self.args.connections, seconds=self.args.seconds, script=script
        )
        self.expected_rps = max(self.expected_rps, rps)
        return rps


def print_round(index: int, row: Row) -> None:
    bearer, dpop = row["bearer"], row["dpop"]
    print(f"round {index + 1}: Bearer {bearer:8.0f} rps | DPoP {dpop:8.0f} rps "
          f"({dpop / bearer:.2f}x)", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    wrk_arguments(parser)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-dpop-bench-"))
    db = f"sqlite:///{tmp / 'dpop.db'}"
    client = create_client(db, "svc", scope="read")
    rs = create_client(db, "rs", introspect=True)
    key = DPoPKey()
    with authorization_server(db) as auth, example_resource_server(auth.url, rs) as resource:
        url = resource.url + PROTECTED_PATH
        bearer = token(auth.url, client)
        bound = token(auth.url, client, key.proof("POST", auth.url + "/oauth2/token"))
        with httpx.Client(timeout=10) as http:  # warm both cache entries
            assert http.get(url, headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
            proof = key.proof("GET", url, token=bound)
            warm = http.get(url, headers={"Authorization": f"DPoP {bound}", "DPoP": proof})
            assert warm.status_code == 200, warm.text
        bearer_script = request_script(tmp, "bearer", f"Bearer {bearer}", None)
        wrk = functools.partial(run_wrk, url, connections=args.connections, seconds=args.seconds)
        dpop_run = DPoPRun(resource.url, key, bound, tmp, args)
        dpop_run.expected_rps = wrk(script=bearer_script)  # warm-up, and the proofs' count
        cases = {"bearer": functools.partial(wrk, script=bearer_script), "dpop": dpop_run}
        ratio = median_ratio(alternate(cases, args.rounds, report=print_round), "dpop", "bearer")
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(f"DPoP / Bearer (warm cache): {ratio:.2f}x  (target >= {TARGET}x) {verdict}")


if __name__ == "__main__":
    main()
