"""Soak: sustained mixed traffic on the authorization server and a resource server at once.

Loopback only. One `tokengate serve` (fresh SQLite unless `--database`) and one example resource
server following it (revocation events on, access log off). Two wrk processes run side by side
for `--duration` seconds with `--connections` each:

* AS: a Lua script picks per request, by `--mix` (default 10/85/5): token issuance
  (client_credentials), introspection of one of `--pool` pre-issued tokens, or revocation of one
  of as many other pre-issued tokens (revoking an already revoked token is a 200, RFC 7009 §2.2);
* RS: `GET /auth-api/hello` with one of `--rs-tokens` valid tokens (cached beforehand) in the
  custom `X-Access-Token` header.

Every `--sample-interval` seconds the VmRSS of both processes (/proc/PID/status) and their
cache sizes (/metrics) are sampled. The summary gives per target the requests, errors (non-2xx,
socket errors incl. wrk timeouts; target zero), throughput and p50/p99 latency, per AS endpoint
the status counts (from the AS's own metrics), and the RSS series with the growth from the
second 10 s to the last 10 s (flat = bounded caches, no leak).

    .venv/bin/python bench/soak.py [--duration 60] [--connections 64] [--mix 10,85,5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _harness import (
    FORM,
    PROTECTED_PATH,
    TOKEN_HEADER,
    Server,
    WrkResult,
    authorization_server,
    create_client,
    example_resource_server,
    fetch_tokens,
    lua_string,
    parse_wrk,
    start_wrk,
    warm_resource_servers,
)

from tokengate.core.wire import INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

# -- setup: processes --------------------------------------------------------------------------


@contextlib.contextmanager
def servers(db: str, rs_client: ClientCredentials) -> Iterator[tuple[Server, Server]]:
    """The authorization server and the example resource server following it."""
    with (
        authorization_server(db) as auth,
        example_resource_server(auth.url, rs_client, "--no-access-log") as resource,
    ):
        yield auth, resource


# -- wrk scripts and output --------------------------------------------------------------------


def lua_list(name: str, values: list[str]) -> str:
    return f"local {name} = {{\n" + ",\n".join(map(lua_string, values)) + "\n}\n"


def as_script(path: Path, mix: tuple[float, float, float], app: ClientCredentials,
              rs: ClientCredentials, pool: list[str], revocable: list[str]) -> Path:  # fmt: skip
    token_share, introspect_share = mix[0], mix[0] + mix[1]
    path.write_text(
        lua_list("pool", pool)
        + lua_list("revocable", revocable)
        + f"""
local app = {{["Authorization"] = "{app.basic_authorization()}", ["Content-Type"] = "{FORM}"}}
local rs = {{["Authorization"] = "{rs.basic_authorization()}", ["Content-Type"] = "{FORM}"}}
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local r = math.random()
  if r < {token_share} then
    return wrk.format("POST", "{TOKEN_PATH}", app, "grant_type=client_credentials")
  elseif r < {introspect_share} then
    local body = "token=" .. pool[math.random(#pool)] .. "&token_type_hint=access_token"
    return wrk.format("POST", "{INTROSPECT_PATH}", rs, body)
  end
  local body = "token=" .. revocable[math.random(#revocable)] .. "&token_type_hint=access_token"
  return wrk.format("POST", "{REVOKE_PATH}", app, body)
end
"""
    )
    return path


def rs_script(path: Path, tokens: list[str]) -> Path:
    path.write_text(
        lua_list("tokens", tokens)
        + f"""
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local headers = {{["{TOKEN_HEADER}"] = tokens[math.random(#tokens)]}}
  return wrk.format("GET", "{PROTECTED_PATH}", headers)
end
"""
    )
    return path


def run_wrk_side_by_side(
    scripts: dict[str, Path], args: argparse.Namespace
) -> dict[str, WrkResult]:
    """One wrk per base URL, all at once for `--duration` seconds."""
    options = {"connections": args.connections, "seconds": args.duration,
               "timeout": args.wrk_timeout}  # fmt: skip
    runs = {url: start_wrk(url + "/", script=script, **options) for url, script in scripts.items()}
    return {url: parse_wrk(run.communicate(timeout=args.duration + 60)[0])
            for url, run in runs.items()}  # fmt: skip


# -- sampling ----------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


@dataclass
class Sampler:
    as_url: str
    rs_url: str
    pids: dict[str, int]
    interval: float
    rows: list[tuple[float, float, float, float | None, float | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        with httpx.Client(timeout=5) as http:
            while not self.stop.wait(self.interval if self.rows else 0):
                as_cache = self._scrape(http, self.as_url, "tokengate_token_cache_entries")
                rs_cache = self._scrape(http, self.rs_url, "tokengate_rs_cache_size")
                rss = (rss_mib(self.pids["AS"]), rss_mib(self.pids["RS"]))
                self.rows.append((time.monotonic() - started, *rss, as_cache, rs_cache))

    @staticmethod
    def _scrape(http: httpx.Client, base: str, name: str) -> float | None:
        with contextlib.suppress(httpx.HTTPError):
            return metric(http.get(base + "/metrics").text, name)
        return None


def as_counts(as_url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(as_url + "/metrics", timeout=10).text
    pattern = r'^tokengate_http_requests_total\{endpoint="(\w+)",status="(\d+)"\} ([\d.e+]+)$'
    return {(e, s): float(v) for e, s, v in re.findall(pattern, text, re.M)}


# -- report ------------------------------------------------------------------------------------


def report_wrk(name: str, result: WrkResult) -> None:
    p = result.percentiles
    print(f"{name}: {result.requests} requests in {result.seconds:.1f}s = "
          f"{result.requests / result.seconds:.0f} req/s | p50 {p.get('50%', float('nan')):.2f} ms"
          f" p90 {p.get('90%', float('nan')):.2f} ms p99 {p.get('99%', float('nan')):.2f} ms | "
          f"errors {result.errors} (non-2xx {result.non_2xx}, socket {result.socket_errors})")  # fmt: skip


def report_endpoints(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> int:
    unexpected = 0
    for endpoint in ("token", "introspect", "revoke"):
        counts = {s: after[k] - before.get(k, 0) for k in after if (s := k[1]) and k[0] == endpoint}
        counts = {s: int(n) for s, n in sorted(counts.items()) if n}
        unexpected += sum(n for s, n in counts.items() if not s.startswith("2"))
        print(f"  AS {endpoint:<10} by status: {counts}")
    return unexpected


def window(rows: list[tuple[float, ...]], column: int, start: float, end: float) -> float:
    values = [r[column] for r in rows if start <= r[0] < end]
    return statistics.mean(values) if values else float("nan")


def report_memory(rows: list[tuple[float, float, float, float | None, float | None]],
                  duration: float) -> bool:  # fmt: skip
    print("\nmemory (VmRSS MiB) and cache sizes, sampled:")
    print("     t/s   AS RSS   RS RSS   AS token cache   RS token cache")
    for t, as_rss, rs_rss, as_cache, rs_cache in rows:
        print(f"  {t:6.1f} {as_rss:8.1f} {rs_rss:8.1f} {as_cache!s:>16} {rs_cache!s:>16}")
    flat = True
    for column, name in ((1, "AS"), (2, "RS")):
        early = window(rows, column, 10, 20)
        late = window(rows, column, duration - 10, duration + 0.5)
        growth = late - early
        ok = growth <= max(4.0, 0.03 * early)
        flat &= ok
        print(f"  {name} RSS growth, mean of 10-20 s → mean of last 10 s: {early:.1f} → "
              f"{late:.1f} MiB ({growth:+.1f} MiB, {100 * growth / early:+.1f}%) "
              f"{'flat' if ok else 'GROWING'}")  # fmt: skip
    return flat


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=60, help="seconds (>= 30)")
    parser.add_argument("--connections", type=int, default=64, help="per wrk (AS and RS)")
    parser.add_argument("--mix", default="10,85,5", help="token,introspect,revoke percentages")
    parser.add_argument("--pool", type=int, default=1000, help="tokens to introspect/revoke")
    parser.add_argument("--rs-tokens", type=int, default=500, help="tokens sent to the RS")
    parser.add_argument("--sample-interval", type=float, default=2.0)
    parser.add_argument("--wrk-timeout", type=int, default=2, help="wrk counts slower as errors")
    parser.add_argument("--database", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    if args.duration < 30:
        parser.error("--duration must be >= 30 (the memory windows need 10-20 s and the last 10 s)")
    shares = [float(x) for x in args.mix.split(",")]
    if len(shares) != 3 or abs(sum(shares) - 100) > 1e-6:
        parser.error("--mix needs three percentages adding up to 100")
    args.shares = tuple(s / 100 for s in shares)
    return args


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tg-soak-"))
    db = args.database or f"sqlite:///{tmp / 'soak.db'}"
    app = create_client(db, "soak-app", scope="read write", token_ttl=7200)
    rs_client = create_client(db, "soak-rs", introspect=True)
    with servers(db, rs_client) as (auth, resource):
        pool, revocable, rs_tokens = (
            asyncio.run(fetch_tokens(auth.url, app, n))
            for n in (args.pool, args.pool, args.rs_tokens)
        )
        asyncio.run(warm_resource_servers([resource.url], rs_tokens))
        scripts = {
            auth.url: as_script(tmp / "as.lua", args.shares, app, rs_client, pool, revocable),
            resource.url: rs_script(tmp / "rs.lua", rs_tokens),
        }
        pids = {"AS": auth.pid, "RS": resource.pid}
        sampler = Sampler(auth.url, resource.url, pids, args.sample_interval)
        before = as_counts(auth.url)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        print(f"soak: {args.duration}s, {args.connections} connections each on AS ({auth.url}, mix "
              f"token/introspect/revoke {args.mix}) and RS ({resource.url}), database "
              f"{db.split(':')[0]}", flush=True)  # fmt: skip
        results = run_wrk_side_by_side(scripts, args)
        sampler.stop.set()
        thread.join(10)
        after = as_counts(auth.url)
    report(results[auth.url], results[resource.url], before, after, sampler, args)


def report(
    as_result: WrkResult,
    rs_result: WrkResult,
    before: dict[tuple[str, str], float],
    after: dict[tuple[str, str], float],
    sampler: Sampler,
    args: argparse.Namespace,
) -> None:
    print()
    report_wrk("AS mixed", as_result)
    unexpected = report_endpoints(before, after)
    report_wrk("RS protected", rs_result)
    flat = report_memory(sampler.rows, args.duration)
    errors = as_result.errors + rs_result.errors + unexpected
    total = as_result.requests + rs_result.requests
    print(
        f"\ntotal: {total} requests, {errors} errors; memory {'flat' if flat else 'GROWING'}"
        f" -> {'PASS' if errors == 0 and flat else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
