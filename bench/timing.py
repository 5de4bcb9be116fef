"""Timing where the README promises equal answers take equal time (issues 6 and 15).

Samples interleaved in a fresh random order every round so drift and noise hit every case
alike; per case the median and the interquartile range, then ratios of medians (≈ 1.00 means
no measurable difference):

1. `tokengate.core.credentials.verify_secret` in process (each sample: the mean of `--batch`
   calls): correct secret, wrong in the first character, wrong in the last, unknown client
   (no stored digest).
2. A real `tokengate serve` on loopback (SQLite, one keep-alive connection over a raw socket,
   the throttle raised out of the way), four pairs, A/B printed for each:
   - token endpoint → 401: a real client id with a wrong secret / an unknown client id;
   - introspection by resource server A → `{"active":false}`, the same token every sample: a
     live token of audience B (introspected by B beforehand, so in the server's cache) / an
     unknown well-formed token;
   - the same, a new token every sample (each caller's first look): live tokens of audience B,
     all introspected by B beforehand / fresh unknown tokens;
   - revocation by another client → 200 `{}`: the owner's live token / an unknown token.

Not a unit test (a shared machine is too noisy for a pass/fail threshold): a bench to read.

    .venv/bin/python bench/timing.py [--rounds 300] [--batch 2000] [--http-samples 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from _harness import FORM, alternate, authorization_server, cli, column, fetch_tokens, token_form

from tokengate.core.credentials import (
    hash_value,
    new_access_token,
    new_client_id,
    new_client_secret,
    verify_secret,
)
from tokengate.core.wire import INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials

AUDIENCE_A, AUDIENCE_B = "https://a.example", "https://b.example"


def flip(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by a different one of the same class."""
    old = text[index]
    new = "B" if old == "A" else "A" if old.isalpha() else "1" if old == "0" else "0"
    return text[:index] + new + text[index + 1 :]


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and interquartile range."""
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return median, q3 - q1


def interleaved(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """`rounds` samples of every case, the order shuffled each round."""
    rows = alternate(cases, rounds, shuffle=True)
    return {name: column(rows, name) for name in cases}


def report(title: str, unit: str, samples: dict[str, list[float]], reference: str) -> None:
    print(f"\n{title}")
    base = summary(samples[reference])[0]
    for name, values in samples.items():
        median, iqr = summary(values)
        print(f"  {name:<22} median {median:9.3f} {unit}  IQR {iqr:8.3f} {unit}  "
              f"n={len(values):<6} ratio to {reference}: {median / base:.3f}")  # fmt: skip


# -- 1. in process -----------------------------------------------------------------------------


def batch_timer(presented: str, stored: str | None, batch: int) -> Callable[[], float]:
    def sample() -> float:
        started = time.perf_counter_ns()
        for _ in range(batch):
            verify_secret(presented, stored)
        return (time.perf_counter_ns() - started) / batch

    return sample


def in_process(rounds: int, batch: int) -> None:
    secret = new_client_secret()
    stored = hash_value(secret)
    last = len(secret) - 1
    assert verify_secret(secret, stored)
    assert not verify_secret(flip(secret, 0), stored)
    assert not verify_secret(flip(secret, last), stored)
    cases = {
        "correct": batch_timer(secret, stored, batch),
        "wrong first char": batch_timer(flip(secret, 0), stored, batch),
        "wrong last char": batch_timer(flip(secret, last), stored, batch),
        "unknown client (None)": batch_timer(secret, None, batch),
    }
    interleaved(cases, max(1, rounds // 10))  # warm-up
    samples = interleaved(cases, rounds)
    report(f"verify_secret, in process ({rounds} samples x {batch} calls)", "ns",
           samples, "wrong last char")  # fmt: skip


# -- 2. through a real server -------------------------------------------------------------------


class KeepAlive:
    """One keep-alive HTTP/1.1 connection over a raw socket: the least client-side noise."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def post(self, path: str, form: dict[str, str], client: ClientCredentials) -> tuple[int, bytes]:
        """Send one form POST; the status and body of the answer."""
        body = urlencode(form).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM}\r\n"
            f"Authorization: {client.basic_authorization()}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while (answer := self._answer()) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed the connection")
            self.buffer += chunk
        return answer

    def _answer(self) -> tuple[int, bytes] | None:
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        return int(head.split(b" ")[1]), rest[:length]

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Probe:
    """One case: a request (or one per sample, from `forms`) and the exact answer it must get."""

    path: str
    caller: ClientCredentials
    forms: Iterator[dict[str, str]]
    status: int
    body: bytes | None = None  # None: any body (the 401 bodies are equal, checked separately)


def timer(http: KeepAlive, probe: Probe) -> Callable[[], float]:
    def sample() -> float:
        form = next(probe.forms)
        started = time.perf_counter_ns()
        status, body = http.post(probe.path, form, probe.caller)
        elapsed = (time.perf_counter_ns() - started) / 1000
        if status != probe.status or (probe.body is not None and body != probe.body):
            raise SystemExit(f"{probe.path}: expected {probe.status}, got {status}: {body!r}")
        return elapsed

    return sample


def same(form: dict[str, str]) -> Iterator[dict[str, str]]:
    return itertools.repeat(form)


def each(tokens: list[str]) -> Iterator[dict[str, str]]:
    return ({"token": token} for token in tokens)


def clients(db: str) -> dict[str, ClientCredentials]:
    """The owner of the tokens (audience B), two resource servers (A and B), another client."""

    def made(name: str, *args: str) -> ClientCredentials:
        document = json.loads(cli("clients", "create", name, "--database", db, "--json", *args))
        return ClientCredentials(document["client_id"], document["client_secret"])

    return {
        "owner": made("owner", "--scope", "read", "--audience", AUDIENCE_B),
        "rs_a": made("rs-a", "--scope", "", "--introspect", "--audience", AUDIENCE_A),
        "rs_b": made("rs-b", "--scope", "", "--introspect", "--audience", AUDIENCE_B),
        "other": made("other", "--scope", "read"),
    }


def probes(
    http: KeepAlive, who: dict[str, ClientCredentials], live: list[str]
) -> dict[str, tuple[Probe, Probe]]:
    """The pairs the README says answer alike, in the same time."""
    owner, rs_a, rs_b, other = who["owner"], who["rs_a"], who["rs_b"], who["other"]
    for token in live:  # cached for the audience they were issued for (B)
        status, body = http.post(INTROSPECT_PATH, {"token": token}, rs_b)
        if status != 200 or json.loads(body)["active"] is not True:
            raise SystemExit(f"B could not introspect its own token: {status} {body!r}")
    known, first = live[0], live[1:]
    inactive = b'{"active":false}'
    secret = owner.client_secret
    return {
        "token: wrong secret / unknown client id": (
            Probe(TOKEN_PATH, ClientCredentials(owner.client_id, flip(secret, len(secret) - 1)),
                  same(token_form()), 401),
            Probe(TOKEN_PATH, ClientCredentials(new_client_id(), secret), same(token_form()), 401),
        ),
        "introspect, repeated: another audience's live / unknown": (
            Probe(INTROSPECT_PATH, rs_a, same({"token": known}), 200, inactive),
            Probe(INTROSPECT_PATH, rs_a, same({"token": new_access_token()}), 200, inactive),
        ),
        "introspect, first look: another audience's live / unknown": (
            Probe(INTROSPECT_PATH, rs_a, each(first), 200, inactive),
            Probe(INTROSPECT_PATH, rs_a, each([new_access_token() for _ in first]), 200, inactive),
        ),
        "revoke: another client's live / unknown": (
            Probe(REVOKE_PATH, other, same({"token": known}), 200, b"{}"),
            Probe(REVOKE_PATH, other, same({"token": new_access_token()}), 200, b"{}"),
        ),
    }  # fmt: skip


def through_server(samples: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tg-timing-"))
    db = f"sqlite:///{tmp / 'timing.db'}"
    who = clients(db)
    throttle_off = ("--max-auth-failures", "1000000000", "1000000000")
    with authorization_server(db, *throttle_off, log_level="error") as auth:
        fresh = samples + samples // 10 + 2  # one per sample (warm-up included), and one more
        live = asyncio.run(fetch_tokens(auth.url, who["owner"], fresh))
        http = KeepAlive(auth.url)
        pairs = probes(http, who, live)
        timers = {
            f"{pair} [{side}]": timer(http, probe)
            for pair, both in pairs.items()
            for side, probe in zip(("A", "B"), both, strict=True)
        }
        interleaved(timers, max(1, samples // 10))  # warm-up: connection, caches, first looks
        results = interleaved(timers, samples)
        http.close()
    print(
        f"\nreal server on loopback, one keep-alive connection, {samples} shuffled samples per case"
    )
    for pair in pairs:
        a, b = results[f"{pair} [A]"], results[f"{pair} [B]"]
        (ma, ia), (mb, ib) = summary(a), summary(b)
        print(f"  {pair:<60} A {ma:7.1f} us (IQR {ia:6.1f})  B {mb:7.1f} us (IQR {ib:6.1f})"
              f"  A/B {ma / mb:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=300, help="in-process samples per case")
    parser.add_argument("--batch", type=int, default=2000, help="calls per in-process sample")
    parser.add_argument("--http-samples", type=int, default=2000, help="requests per case")
    args = parser.parse_args()
    in_process(args.rounds, args.batch)
    through_server(args.http_samples)
    print("\nratios ≈ 1.00 = the two cases of a pair take the same time (the README's promise)")


if __name__ == "__main__":
    main()
