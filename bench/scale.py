"""Introspection and issuance on a large token table vs a small one; introspection during a purge.

Default mode (issue 14, "Scale"): two PostgreSQL databases of this run's own, `--rows` token rows
(default 10 M; `--rows 1000000` is the quick mode) and `--small` (10 k), filled by SQL with real
tokens spread among the bulk rows (see `_tables`), plus `--issued` tokens issued through the
server. Rounds alternate the two (A B, then B A), each with a fresh `tokengate serve` (its
token cache empty):

- cold: `--slice` real tokens introspected once each (within `--cold-seconds`) (each a storage lookup), at 32
  connections and at 1 (another slice), wrk stopping when the slice is done. The large table
  holds a slice for every run, so no token is ever looked up twice there (the lookups spread
  over the whole index, as live traffic on a big table does); the small one holds two slices
  (all its rows fit in any cache anyway), reused each round;
- warm: one token introspected for `--seconds` (an in-process cache hit);
- issuance: `POST /oauth2/token` for `--seconds`.

Printed: each round, then the median over rounds of large ÷ small for throughput and p99, and
bytes per token on disk (`pg_total_relation_size / rows`, and per index).

`--purge`: one PostgreSQL database holding `--rows` expired tokens plus the cold set and one
SQLite file holding `--sqlite-rows` expired ones (0 skips it); cold-introspection p99 over
slices before a `tokengate tokens purge-expired` starts, then while it runs; the median p99
ratio during ÷ before, and the purge's rate.

    python bench/scale.py [--rows 10000000] [--small 10000] [--rounds 5] [--seconds 5]
    python bench/scale.py --rows 1000000 --rounds 3          # quick mode
    python bench/scale.py --purge [--rows 5000000] [--sqlite-rows 2000000]
    python bench/scale.py --admin-url postgresql://postgres@127.0.0.1:5433/postgres [--prewarm]

Targets: cold p99(large) ÷ p99(small) ≤ 1.5x and throughput ≥ 0.8x at 32 connections, warm
unchanged, issuance ≥ 0.9x; p99 during a purge ≤ 2x before it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from _harness import (
    FORM,
    WrkResult,
    authorization_server,
    basic,
    create_client,
    fetch_token,
    fetch_tokens,
    introspect,
    lua_string,
    parse_wrk,
    require_wrk,
    tokengate,
    wrk_command,
    wrk_post_script,
)
from _tables import (
    ADMIN_URL,
    Cold,
    count_rows,
    load_postgres,
    load_sqlite,
    postgres_database,
    postgres_footprint,
    prewarm,
    slices,
)

from tokengate.core.wire import INTROSPECT_PATH, TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

CASES = ("cold32", "cold1", "warm32", "issue32")


def cold_script(directory: Path, name: str, tokens: Sequence[str], rs: ClientCredentials) -> Path:
    """A wrk script introspecting each token once, then stopping."""
    listing = directory / f"{name}.tokens"
    listing.write_text("\n".join(tokens) + "\n")
    script = directory / f"{name}.lua"
    script.write_text(
        f"""
local tokens = {{}}
for line in io.lines({lua_string(str(listing))}) do tokens[#tokens + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = {lua_string(FORM)}
wrk.headers["Authorization"] = {lua_string(basic(rs)["Authorization"])}
local sent, seen = 0, 0
request = function()
  sent = sent + 1
  return wrk.format(nil, nil, nil, "token=" .. tokens[(sent - 1) % #tokens + 1])
end
response = function(status, headers, body)
  seen = seen + 1
  if seen >= #tokens then wrk.thread:stop() end
end
"""
    )
    return script


_AVERAGE = re.compile(r"Latency\s+([\d.]+)(us|ms|s)")
_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, script: Path, connections: int, seconds: float, *, once: int = 0) -> WrkResult:
    """One wrk run; fails loudly on any error response. With `once` (a cold pass of that many
    tokens) wrk stops sending when they are done but runs out its `seconds`, so throughput is
    taken from the latencies instead (Little's law: connections / mean latency)."""
    command = wrk_command(url, connections=connections, seconds=seconds, script=script)
    result = parse_wrk(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    if result.errors:
        raise SystemExit(
            f"wrk errors against {url}: {result.non_2xx} non-2xx, {result.socket_errors}"
        )
    if not once:
        return result
    if result.requests < once:
        raise SystemExit(f"a cold pass did not finish in {seconds} s: raise --cold-seconds")
    average = _AVERAGE.search(result.raw)
    assert average is not None, result.raw
    rps = connections / (float(average.group(1)) * _MS[average.group(2)] / 1e3)
    return dataclasses.replace(result, rps=rps)


class Table:
    """One database under test: its URL, clients, cold tokens (sliced per run) and scripts."""

    def __init__(
        self, label: str, url: str, rows: int, slice_size: int, runs: int, work: Path
    ) -> None:
        self.label, self.url, self.work = label, url, work
        self.client = create_client(url, "bench", scope="read write")
        self.rs = create_client(url, "bench-rs", scope="read write", introspect=True)
        parts = max(2, min(runs, rows // slice_size))
        cold = Cold.make(parts * slice_size)
        load_postgres(url, rows, cold, self.client.client_id)
        self.slices = slices(cold.values, parts)

    def prepare(self, issued: int, *, warm_buffers: bool) -> None:
        """Issue `issued` tokens through the server (one for the warm case); with
        `warm_buffers`, then read the table and its key into shared buffers."""
        with authorization_server(self.url) as auth:
            real = asyncio.run(fetch_tokens(auth.url, self.client, issued))
            assert introspect(auth.url, self.rs, real[-1])["active"] is True
            assert introspect(auth.url, self.rs, self.slices[-1][-1])["active"] is True
        self.warm_token = real[0]
        if warm_buffers:
            prewarm(self.url)

    def cold_slice(self, run: int) -> list[str]:
        return self.slices[run % len(self.slices)]

    def round(self, index: int, seconds: float, cold_seconds: float) -> dict[str, WrkResult]:
        """A fresh server: cold at 32 and 1 connections (own slices), warm, issuance."""
        w = self.work
        with authorization_server(self.url) as auth:
            url = auth.url + INTROSPECT_PATH
            cold32 = cold_script(
                w, f"{self.label}-c32-{index}", self.cold_slice(2 * index), self.rs
            )
            cold1 = cold_script(
                w, f"{self.label}-c1-{index}", self.cold_slice(2 * index + 1), self.rs
            )
            body = f"token={self.warm_token}"
            warm = wrk_post_script(w, f"{self.label}-warm", body, basic(self.rs))
            issue = wrk_post_script(
                w, f"{self.label}-issue", "grant_type=client_credentials", basic(self.client)
            )
            fetch_token(auth.url, self.client)  # connections and statements ready
            return {
                "cold32": wrk(url, cold32, 32, cold_seconds, once=len(self.slices[0])),
                "cold1": wrk(url, cold1, 1, cold_seconds, once=len(self.slices[0])),
                "warm32": wrk(url, warm, 32, seconds),
                "issue32": wrk(auth.url + TOKEN_PATH, issue, 32, seconds),
            }


def p99(result: WrkResult) -> float:
    return result.percentiles["99%"]


def print_round(index: int, label: str, results: dict[str, WrkResult]) -> None:
    cells = " | ".join(
        f"{case} {r.rps:7.0f} rps p99 {p99(r):6.2f} ms ({r.requests})"
        for case, r in results.items()
    )
    print(f"round {index + 1} {label:>5}: {cells}", flush=True)


def ratio(rounds: list[dict[str, dict[str, WrkResult]]], case: str, what: str) -> float:
    """Median over rounds of large ÷ small."""
    value = (lambda r: r.rps) if what == "rps" else p99
    return statistics.median(value(r["large"][case]) / value(r["small"][case]) for r in rounds)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def scale(args: argparse.Namespace, work: Path) -> None:
    runs = 2 * args.rounds
    small_db, large_db = (postgres_database(n, args.admin_url) for n in ("small", "large"))
    with small_db as small_url, large_db as large_url:
        started = time.monotonic()
        tables = {}
        for label, url, rows in (("small", small_url, args.small), ("large", large_url, args.rows)):
            tables[label] = Table(label, url, rows, args.slice, runs, work)
            tables[label].prepare(args.issued, warm_buffers=args.prewarm)
        print(f"loaded {args.small:,} and {args.rows:,} rows in {time.monotonic() - started:.0f} s")
        for label, table in tables.items():
            print_footprint(label, table.url)
        rounds: list[dict[str, dict[str, WrkResult]]] = []
        for index in range(args.rounds):
            order = ("small", "large") if index % 2 == 0 else ("large", "small")
            row: dict[str, dict[str, WrkResult]] = {}
            for label in order:
                row[label] = tables[label].round(index, args.seconds, args.cold_seconds)
                print_round(index, label, row[label])
            rounds.append(row)
        for label, table in tables.items():
            print_footprint(label, table.url)
    print(
        f"\nPostgreSQL, {args.rows:,} vs {args.small:,} rows, {args.rounds} rounds, median large ÷ small:"
    )
    for case in CASES:
        print(
            f"  {case:8} throughput {ratio(rounds, case, 'rps'):.2f}x   p99 {ratio(rounds, case, 'p99'):.2f}x"
        )
    cold_p99, cold_rps = ratio(rounds, "cold32", "p99"), ratio(rounds, "cold32", "rps")
    print(f"cold p99 at 32 connections {cold_p99:.2f}x (target <= 1.5x) {verdict(cold_p99 <= 1.5)}")
    print(
        f"cold throughput at 32 connections {cold_rps:.2f}x (target >= 0.8x) {verdict(cold_rps >= 0.8)}"
    )
    issue = ratio(rounds, "issue32", "rps")
    print(f"issuance {issue:.2f}x (target >= 0.9x) {verdict(issue >= 0.9)}")


def print_footprint(label: str, url: str) -> None:
    f = postgres_footprint(url)
    parts = ", ".join(f"{name} {size / f.rows:.0f}" for name, size in f.parts.items())
    print(
        f"{label}: {f.rows:,} rows, {f.total / 2**20:,.0f} MiB, {f.per_token:.0f} bytes per token ({parts})"
    )


# -- purge -------------------------------------------------------------------------------------


@contextlib.contextmanager
def purging(db: str, pace: Sequence[str] = ()) -> Iterator[subprocess.Popen[str]]:
    """`tokengate tokens purge-expired` (with `pace`'s options) running in the background."""
    proc = subprocess.Popen(
        tokengate("tokens", "purge-expired", "--database", db, *pace),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def purge_case(
    db: str,
    name: str,
    cold: Cold,
    client: ClientCredentials,
    rs: ClientCredentials,
    work: Path,
    slots: int,
    expired: int,
    pace: Sequence[str] = (),
) -> None:
    """p99 of cold passes before the purge starts, then while it runs."""
    parts = slices(cold.values, 2 * slots)
    with authorization_server(db) as auth:
        url = auth.url + INTROSPECT_PATH
        assert introspect(auth.url, rs, cold.values[-1])["active"] is True
        scripts = [cold_script(work, f"{name}-purge-{i}", part, rs) for i, part in enumerate(parts)]
        once = len(parts[0])
        before = [wrk(url, s, 32, 10, once=once) for s in scripts[:slots]]
        started = time.monotonic()
        during: list[WrkResult] = []
        with purging(db, pace) as proc:
            time.sleep(0.5)  # the purge has begun its batches
            for script in scripts[slots:]:
                if proc.poll() is not None:
                    break
                during.append(wrk(url, script, 32, 10, once=once))
            out, _ = proc.communicate(timeout=3600)
        elapsed = time.monotonic() - started
    left = count_rows(db.removeprefix("sqlite:///"))
    if not during:
        raise SystemExit(f"{name}: the purge ended before any pass ran during it: use more rows")
    b, d = statistics.median(map(p99, before)), statistics.median(map(p99, during))
    print(
        f"{name}: before p99 {[round(p99(r), 2) for r in before]} ms, during {[round(p99(r), 2) for r in during]} ms"
    )
    print(
        f"{name}: {out.strip()} in {elapsed:.0f} s ({expired / elapsed:,.0f} rows/s), {left:,} rows left"
    )
    print(f"{name}: p99 during ÷ before {d / b:.2f}x (target <= 2x) {verdict(d / b <= 2)}")


def pace_options(text: str) -> list[str]:
    """`BATCH:PAUSE:RATIO` (any part may be empty: the default) as purge-expired's options."""
    names = ("--batch", "--pause", "--idle-ratio")
    return [a for name, v in zip(names, text.split(":"), strict=False) if v for a in (name, v)]


def purge(args: argparse.Namespace, work: Path) -> None:
    slots = 3
    if not args.no_postgres:
        purge_postgres(args, work, slots)
    for i, pace in enumerate(args.sqlite_pace or [""]):
        if not args.sqlite_rows:
            break
        print(f"SQLite pace: {pace or 'default'}")
        path = work / f"purge-{i}.db"
        db = f"sqlite:///{path}"
        client = create_client(db, "bench", scope="read write")
        rs = create_client(db, "bench-rs", scope="read write", introspect=True)
        cold = Cold.make(args.cold)
        started = time.monotonic()
        load_sqlite(str(path), len(cold.values), cold, client.client_id, expired=args.sqlite_rows)
        print(
            f"SQLite: {args.sqlite_rows:,} expired rows loaded in {time.monotonic() - started:.0f} s"
        )
        name = "SQLite" + (f" ({pace})" if pace else "")
        purge_case(db, name, cold, client, rs, work, slots, args.sqlite_rows, pace_options(pace))


def purge_postgres(args: argparse.Namespace, work: Path, slots: int) -> None:
    with postgres_database("purge", args.admin_url) as url:
        client = create_client(url, "bench", scope="read write")
        rs = create_client(url, "bench-rs", scope="read write", introspect=True)
        cold = Cold.make(args.cold)
        started = time.monotonic()
        load_postgres(url, len(cold.values), cold, client.client_id, expired=args.rows)
        print(
            f"PostgreSQL: {args.rows:,} expired rows loaded in {time.monotonic() - started:.0f} s"
        )
        print_footprint("purge", url)
        purge_case(url, "PostgreSQL", cold, client, rs, work, slots, args.rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=None, help="large table (default 10 M; --purge: 5 M expired)"
    )
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--slice", type=int, default=2000, help="tokens per cold pass")
    parser.add_argument("--cold-seconds", type=float, default=8, help="wrk duration of a cold pass")
    parser.add_argument(
        "--cold", type=int, default=24_000, help="--purge: real tokens among the rows"
    )
    parser.add_argument("--issued", type=int, default=500, help="tokens issued through the server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--purge", action="store_true")
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="pg_prewarm each table and its key after loading (needs shared_buffers to hold them)",
    )
    parser.add_argument(
        "--admin-url",
        default=ADMIN_URL,
        help="the PostgreSQL server to make this run's databases on (e.g. one with other settings)",
    )
    parser.add_argument("--sqlite-rows", type=int, default=2_000_000)
    parser.add_argument(
        "--sqlite-pace",
        action="append",
        help="--purge: BATCH:PAUSE:RATIO for purge-expired on SQLite; repeat to compare (each on"
        " a fresh file)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="--purge: SQLite only")
    args = parser.parse_args()
    args.rows = args.rows or (5_000_000 if args.purge else 10_000_000)
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="tg-scale-") as tmp:
        (purge if args.purge else scale)(args, Path(tmp))


if __name__ == "__main__":
    main()
