"""Token issuance by client authentication: private_key_jwt (RFC 7523) and DPoP (RFC 9449), each
as a ratio to client_secret_basic in the same run (issue 13).

One `tokengate serve`, one wrk thread and N connections. Each round runs basic → private_key_jwt
→ DPoP so drift hits all three alike; the report is the median per-round ratio. An assertion or
a proof is good once (its `jti` is recorded), so each round signs fresh ones before its run (ES256
with joserfc, outside the timed part) and wrk sends each once: enough for 1.5x what the basic
case managed the round before. Any non-2xx (a replay, had they run out) fails the run.

    .venv/bin/python bench/client_auth.py [--database URL] [--rounds 5] [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import functools
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from _harness import (
    FORM,
    Row,
    alternate,
    authorization_server,
    basic,
    cli,
    create_client,
    lua_string,
    median_ratio,
    run_wrk,
    wrk_arguments,
    wrk_post_script,
)
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tokengate.core.client_assertion import ASSERTION_TYPE
from tokengate.core.wire import TOKEN_PATH

GRANT = "grant_type=client_credentials"


def one_each_script(directory: Path, name: str, items: Iterable[str], line: str) -> Path:
    """A wrk script sending one request per item (a file, one item a line), `line` being the Lua
    expression of the request with `item` in it; running out starts over (replays: errors)."""
    data = directory / f"{name}.txt"
    data.write_text("\n".join(items) + "\n")
    script = directory / f"{name}.lua"
    script.write_text(
        f"local items = {{}}\nfor l in io.lines({lua_string(str(data))}) do items[#items + 1] = l end\n"
        "local i = 0\n"
        "request = function()\n  i = i % #items + 1\n  local item = items[i]\n"
        f"  return {line}\nend\n"
    )
    return script


def assertions(client_id: str, key: ECKey, audience: str, count: int) -> list[str]:
    """`count` private_key_jwt token request bodies, each with a fresh assertion."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 240}
    signed = (
        jwt.encode({"alg": "ES256"}, {**claims, "jti": secrets.token_hex(12)}, key)
        for _ in range(count)
    )
    return [f"{GRANT}&client_assertion_type={ASSERTION_TYPE}&client_assertion={a}" for a in signed]


def proofs(key: ECKey, url: str, count: int) -> list[str]:
    """`count` DPoP proofs for POST `url` (RFC 9449 §4.2), each with a fresh jti."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    now = int(time.time())

    def one() -> str:
        claims = {"jti": secrets.token_urlsafe(12), "htm": "POST", "htu": url, "iat": now}
        return jws.serialize_compact(header, json.dumps(claims).encode(), key)

    return [one() for _ in range(count)]


def jwt_client(db: str, tmp: Path, key: ECKey) -> str:
    """`tokengate clients create --jwks FILE`: a private_key_jwt client's id."""
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    made = cli("clients", "create", "bench-jwt", "--scope", "read", "--jwks", str(jwks),
               "--database", db, "--json")  # fmt: skip
    return str(json.loads(made)["client_id"])


def print_round(index: int, row: Row) -> None:
    b, pk, dp = row["basic"], row["private_key_jwt"], row["dpop"]
    print(
        f"round {index + 1}: client_secret_basic {b:7.0f} rps | private_key_jwt {pk:7.0f} rps"
        f" ({pk / b:.2f}x) | DPoP {dp:7.0f} rps ({dp / b:.2f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    wrk_arguments(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    db = args.database or f"sqlite:///{tmp / 'bench.db'}"
    key = ECKey.generate_key("P-256")
    secret_client = create_client(db, "bench", scope="read")
    jwt_id = jwt_client(db, tmp, key)
    with authorization_server(db) as auth:
        url = auth.url + TOKEN_PATH
        wrk = functools.partial(run_wrk, url, connections=args.connections, seconds=args.seconds)
        basic_lua = wrk_post_script(tmp, "basic", GRANT, basic(secret_client))
        dpop_headers = {"Content-Type": FORM, **basic(secret_client)}
        last = {"basic": 2000.0}  # rps of the basic case, to size the next batch of one-use items

        def batch() -> int:
            return int(last["basic"] * args.seconds * 1.5) + 1000

        def run_basic() -> float:
            last["basic"] = wrk(script=basic_lua)
            return last["basic"]

        def run_jwt() -> float:
            bodies = assertions(jwt_id, key, url, batch())
            line = f'wrk.format("POST", nil, {{["Content-Type"] = {lua_string(FORM)}}}, item)'
            return wrk(script=one_each_script(tmp, "jwt", bodies, line))

        def run_dpop() -> float:
            fields = ", ".join(
                f"[{lua_string(k)}] = {lua_string(v)}" for k, v in dpop_headers.items()
            )
            line = f'wrk.format("POST", nil, {{{fields}, ["DPoP"] = item}}, {lua_string(GRANT)})'
            return wrk(script=one_each_script(tmp, "dpop", proofs(key, url, batch()), line))

        run_wrk(url, connections=args.connections, seconds=1, script=basic_lua)  # warm-up
        cases: dict[str, Callable[[], float]] = {
            "basic": run_basic, "private_key_jwt": run_jwt, "dpop": run_dpop,
        }  # fmt: skip
        rows = alternate(cases, args.rounds, report=print_round)
    print(f"\ndatabase: {db.split(':')[0]}, connections: {args.connections}, rounds: {args.rounds}")
    print(
        f"private_key_jwt / client_secret_basic: {median_ratio(rows, 'private_key_jwt', 'basic'):.2f}x"
    )
    print(
        f"DPoP (+ client_secret_basic) / client_secret_basic: {median_ratio(rows, 'dpop', 'basic'):.2f}x"
    )


if __name__ == "__main__":
    main()
