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
import base64
import contextlib
import json
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from _harness import PY, free_port, process, require_wrk

FORM = "application/x-www-form-urlencoded"


# -- setup: clients, processes, tokens ---------------------------------------------------------


def create_client(db: str, name: str, *extra: str) -> tuple[str, str]:
    out = subprocess.run(
        [PY, "-m", "tokengate", "clients", "create", name, "--database", db, "--json", *extra],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    document = json.loads(out)
    return document["client_id"], document["client_secret"]


def basic(client: tuple[str, str]) -> str:
    raw = f"{quote(client[0], safe='')}:{quote(client[1], safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@contextlib.contextmanager
def servers(db: str, rs_client: tuple[str, str]) -> Iterator[tuple[str, str, int, int]]:
    """(AS URL, RS URL, AS pid, RS pid)."""
    as_port, rs_port = free_port(), free_port()
    as_url, rs_url = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}"
    serve = [PY, "-m", "tokengate", "serve", "--port", str(as_port), "--database", db,
             "--log-level", "warning"]  # fmt: skip
    rs = [PY, "-m", "tokengate", "example-resource-server", "--port", str(rs_port),
          "--issuer", as_url, "--client-id", rs_client[0], "--cache-max-ttl", "3600",
          "--no-access-log"]  # fmt: skip
    env = {"TOKENGATE_RS_CLIENT_SECRET": rs_client[1]}
    with (
        process(serve, as_url + "/healthz") as as_proc,
        process(rs, rs_url + "/public/ping", env=env) as rs_proc,
    ):
        yield as_url, rs_url, as_proc.pid, rs_proc.pid


async def issue_tokens(as_url: str, client: tuple[str, str], count: int) -> list[str]:
    limits, timeout = httpx.Limits(max_connections=32), httpx.Timeout(30, pool=None)
    async with httpx.AsyncClient(
        base_url=as_url, auth=client, limits=limits, timeout=timeout
    ) as http:

        async def one() -> str:
            response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"})
            response.raise_for_status()
            return str(response.json()["access_token"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def warm_rs(rs_url: str, tokens: list[str]) -> None:
    limits, timeout = httpx.Limits(max_connections=32), httpx.Timeout(30, pool=None)
    async with httpx.AsyncClient(base_url=rs_url, limits=limits, timeout=timeout) as http:
        answers = await asyncio.gather(
            *(http.get("/auth-api/hello", headers={"X-Access-Token": t}) for t in tokens)
        )
    bad = [a.status_code for a in answers if a.status_code != 200]
    if bad:
        raise SystemExit(f"resource server refused warm-up tokens: {bad[:5]}")


# -- wrk scripts and output --------------------------------------------------------------------


def lua_list(name: str, values: list[str]) -> str:
    return f"local {name} = {{\n" + ",\n".join(f'"{v}"' for v in values) + "\n}\n"


def as_script(path: Path, mix: tuple[float, float, float], app: str, rs: str,
              pool: list[str], revocable: list[str]) -> Path:  # fmt: skip
    token_share, introspect_share = mix[0], mix[0] + mix[1]
    path.write_text(
        lua_list("pool", pool)
        + lua_list("revocable", revocable)
        + f"""
local app = {{["Authorization"] = "{app}", ["Content-Type"] = "{FORM}"}}
local rs = {{["Authorization"] = "{rs}", ["Content-Type"] = "{FORM}"}}
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local r = math.random()
  if r < {token_share} then
    return wrk.format("POST", "/oauth2/token", app, "grant_type=client_credentials")
  elseif r < {introspect_share} then
    local body = "token=" .. pool[math.random(#pool)] .. "&token_type_hint=access_token"
    return wrk.format("POST", "/oauth2/introspect", rs, body)
  end
  local body = "token=" .. revocable[math.random(#revocable)] .. "&token_type_hint=access_token"
  return wrk.format("POST", "/oauth2/revoke", app, body)
end
"""
    )
    return path


def rs_script(path: Path, tokens: list[str]) -> Path:
    path.write_text(
        lua_list("tokens", tokens)
        + """
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local headers = {["X-Access-Token"] = tokens[math.random(#tokens)]}
  return wrk.format("GET", "/auth-api/hello", headers)
end
"""
    )
    return path


def start_wrk(url: str, script: Path, args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [require_wrk(), "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
               "--timeout", f"{args.wrk_timeout}s", "-s", str(script), url]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: dict[str, int]
    percentiles: dict[str, float]  # "50%" → ms
    raw: str

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk(out: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    if done is None:
        raise SystemExit(f"unparseable wrk output:\n{out}")
    seconds = float(done.group(2)) * {"s": 1, "m": 60, "ms": 1e-3}[done.group(3)]
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    names = ("connect", "read", "write", "timeout")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=seconds,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(names, map(int, sockets.groups()), strict=True)) if sockets else {},
        percentiles={p: _ms(v) for p, v in re.findall(r"^\s+(\d+%)\s+([\d.]+\w+)$", out, re.M)},
        raw=out,
    )


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
    app = create_client(db, "soak-app", "--scope", "read write", "--token-ttl", "7200")
    rs_client = create_client(db, "soak-rs", "--introspect")
    with servers(db, rs_client) as (as_url, rs_url, as_pid, rs_pid):
        pool, revocable, rs_tokens = (
            asyncio.run(issue_tokens(as_url, app, n))
            for n in (args.pool, args.pool, args.rs_tokens)
        )
        asyncio.run(warm_rs(rs_url, rs_tokens))
        scripts = (
            as_script(tmp / "as.lua", args.shares, basic(app), basic(rs_client), pool, revocable),
            rs_script(tmp / "rs.lua", rs_tokens),
        )
        sampler = Sampler(as_url, rs_url, {"AS": as_pid, "RS": rs_pid}, args.sample_interval)
        before = as_counts(as_url)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        print(f"soak: {args.duration}s, {args.connections} connections each on AS ({as_url}, mix "
              f"token/introspect/revoke {args.mix}) and RS ({rs_url}), database "
              f"{db.split(':')[0]}", flush=True)  # fmt: skip
        runs = [
            start_wrk(as_url + "/", scripts[0], args),
            start_wrk(rs_url + "/", scripts[1], args),
        ]
        outputs = [run.communicate(timeout=args.duration + 60)[0] for run in runs]
        sampler.stop.set()
        thread.join(10)
        after = as_counts(as_url)
    as_result, rs_result = (parse_wrk(out) for out in outputs)
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
