"""Timing of secret checks: a wrong secret costs the same wherever it is wrong (issue 6).

Two measurements, samples interleaved in a fresh random order every round so drift and noise hit
every case alike; per case the median and the interquartile range, then ratios of medians
(≈ 1.00 means no measurable difference):

1. `tokengate.core.credentials.verify_secret` in process (each sample: the mean of `--batch`
   calls): correct secret, wrong in the first character, wrong in the last, unknown client
   (no stored hash, so the dummy digest is compared).
2. The token endpoint of a real `tokengate serve` on loopback (one keep-alive connection, each
   sample one request → 401): wrong first character, wrong last character, unknown client id.
   The brute-force throttle is raised out of the way (`--max-auth-failures`).

Not a unit test (a shared machine is too noisy for a pass/fail threshold): a bench to read.

    .venv/bin/python bench/timing.py [--rounds 300] [--batch 2000] [--http-samples 3000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _harness import alternate, authorization_server, basic, column, create_client, token_form

from tokengate.core.credentials import hash_value, new_client_id, new_client_secret, verify_secret
from tokengate.core.wire import TOKEN_PATH
from tokengate.resource.protocol.rfc7662 import ClientCredentials


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


# -- 2. through the token endpoint ---------------------------------------------------------------


def request_timer(http: httpx.Client, client: ClientCredentials) -> Callable[[], float]:
    headers, body = basic(client), token_form()

    def sample() -> float:
        started = time.perf_counter_ns()
        response = http.post(TOKEN_PATH, data=body, headers=headers)
        elapsed = (time.perf_counter_ns() - started) / 1000
        if response.status_code != 401:
            raise SystemExit(f"expected 401, got {response.status_code}: {response.text}")
        return elapsed

    return sample


def through_endpoint(samples: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tg-timing-"))
    db = f"sqlite:///{tmp / 'timing.db'}"
    client = create_client(db, "timing", scope="read")
    client_id, secret = client.client_id, client.client_secret
    throttle_off = ("--max-auth-failures", "1000000000", "1000000000")
    with (
        authorization_server(db, *throttle_off, log_level="error") as auth,
        httpx.Client(base_url=auth.url, timeout=10) as http,
    ):
        last = len(secret) - 1
        cases = {
            "wrong first char": ClientCredentials(client_id, flip(secret, 0)),
            "wrong last char": ClientCredentials(client_id, flip(secret, last)),
            "unknown client": ClientCredentials(new_client_id(), secret),
        }
        timers = {name: request_timer(http, presented) for name, presented in cases.items()}
        interleaved(timers, max(1, samples // 10))  # warm-up: connection, caches, JIT-less paths
        results = interleaved(timers, samples)
    report(f"POST /oauth2/token → 401, real server on loopback ({samples} samples per case)",
           "us", results, "wrong last char")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=300, help="in-process samples per case")
    parser.add_argument("--batch", type=int, default=2000, help="calls per in-process sample")
    parser.add_argument("--http-samples", type=int, default=3000, help="requests per case")
    args = parser.parse_args()
    in_process(args.rounds, args.batch)
    through_endpoint(args.http_samples)
    print("\nratios ≈ 1.00 (within the IQR) = no measurable dependence on where a secret is wrong")


if __name__ == "__main__":
    main()
