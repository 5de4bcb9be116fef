"""SQLite WAL size under sustained token issuance: bounded (the default) vs unbounded.

Each run starts a fresh SQLite file and a real `tokengate serve`, issues tokens at full speed
with wrk for `--seconds`, and samples the `-wal` file's size every 20 ms. The bounded server
runs with its defaults; the unbounded one with `--sqlite-wal-limit 0` (the behaviour before the
bound: background PASSIVE checkpoints only). Rounds alternate A B A B; the report is the max and
final WAL size of each run, its tokens/s, and the median per-round throughput ratio. Every 200
must be a durable row: after the server stops, the file must hold at least as many tokens.

    .venv/bin/python bench/wal.py [--seconds 60] [--rounds 1] [--connections 32] [--limit-mib 64]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    alternate,
    authorization_server,
    basic,
    create_client,
    parse_wrk,
    start_wrk,
    wrk_post_script,
)

from tokengate.core.wire import TOKEN_PATH

MIB = 1024 * 1024
SAMPLE_EVERY = 0.02  # seconds


@dataclass
class WalSampler:
    """The largest and the last size seen of one `-wal` file, sampled on a thread."""

    path: Path
    largest: int = 0
    last: int = 0

    def size(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            return self.path.stat().st_size
        return 0

    @contextlib.contextmanager
    def running(self) -> Iterator[WalSampler]:
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(SAMPLE_EVERY):
                self.last = self.size()
                self.largest = max(self.largest, self.last)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.last = self.size()
            self.largest = max(self.largest, self.last)


@dataclass(frozen=True)
class Run:
    """One run's figures."""

    rps: float
    largest: int
    final: int
    answered: int
    stored: int


def one_run(name: str, extra: list[str], args: argparse.Namespace) -> Run:
    """A fresh database and server; wrk issues tokens for `args.seconds` while the WAL is sampled."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tg-wal-{name}-"))
    path = tmp / "wal.db"
    db = f"sqlite:///{path}"
    client = create_client(db, "bench", scope="read")
    script = wrk_post_script(tmp, "token", "grant_type=client_credentials", basic(client))
    sampler = WalSampler(path.with_name(path.name + "-wal"))
    with authorization_server(db, *extra) as auth, sampler.running():
        wrk = start_wrk(
            auth.url + TOKEN_PATH, connections=args.connections, seconds=args.seconds, script=script
        )
        out, _ = wrk.communicate(timeout=args.seconds + 60)
        result = parse_wrk(out)
        final = sampler.size()  # before the clean stop checkpoints and deletes the WAL
    if result.errors:
        raise SystemExit(
            f"{name}: wrk saw errors: {result.non_2xx} non-2xx, {result.socket_errors}"
        )
    with contextlib.closing(sqlite3.connect(path)) as conn:
        stored = int(conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0])
    return Run(result.rps, sampler.largest, final, result.requests, stored)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--limit-mib", type=int, default=None, help="default: the server's")
    parser.add_argument("--bounded-only", action="store_true", help="skip the unbounded runs")
    args = parser.parse_args()

    bounded = [] if args.limit_mib is None else ["--sqlite-wal-limit", str(args.limit_mib)]
    variants = {"bounded": bounded, "unbounded": ["--sqlite-wal-limit", "0"]}
    if args.bounded_only:
        del variants["unbounded"]
    runs: dict[str, list[Run]] = {name: [] for name in variants}

    def case(name: str) -> float:
        run = one_run(name, variants[name], args)
        runs[name].append(run)
        print(
            f"{name:>9}: {run.rps:7.0f} tokens/s | WAL max {run.largest / MIB:7.1f} MiB,"
            f" final {run.final / MIB:7.1f} MiB | 200s {run.answered} (wrk), rows {run.stored}",
            flush=True,
        )
        if run.stored < run.answered:  # every 200 wrk counted must be a committed row
            raise SystemExit(f"{name}: {run.answered} answered but only {run.stored} stored")
        return run.rps

    rows = alternate({name: lambda n=name: case(n) for name in variants}, args.rounds)
    print(f"\n{args.seconds:g} s per run, {args.connections} connections, {args.rounds} round(s)")
    for name, done in runs.items():
        largest = max(r.largest for r in done) / MIB
        rps = statistics.median(r.rps for r in done)
        print(f"{name:>9}: WAL max {largest:7.1f} MiB, median {rps:7.0f} tokens/s")
    if "unbounded" in variants:
        ratio = statistics.median(row["bounded"] / row["unbounded"] for row in rows)
        print(f"tokens/s bounded / unbounded: {ratio:.2f}x (median per-round ratio)")


if __name__ == "__main__":
    main()
