"""Talk to chosen workers of `tokengate serve --workers N`: keep-alive connections, each asked
`/healthz` which worker holds it (the kernel picks a worker per connection, not per request)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode


@dataclass
class WorkerConnection:
    """One keep-alive connection, and the worker (index, pid) serving it."""

    conn: http.client.HTTPConnection
    worker: int
    pid: int

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send one request on this connection; (status, parsed JSON body or None)."""
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def form(self, path: str, form: dict[str, str], client: tuple[str, str]) -> tuple[int, Any]:
        """POST an urlencoded form with RFC 6749 §2.3.1 Basic client authentication."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", **basic(*client)}
        return self.request("POST", path, urlencode(form).encode(), headers)


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def open_connection(port: int) -> WorkerConnection:
    """A new connection, and which worker answers on it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    body = json.loads(conn.getresponse().read())
    return WorkerConnection(conn, int(body["worker"]), int(body["pid"]))


@contextlib.contextmanager
def one_per_worker(
    port: int, workers: int, timeout: float = 10.0
) -> Iterator[list[WorkerConnection]]:
    """A connection to each of `workers` workers (index order), opening new ones until every
    worker has answered; all closed afterwards."""
    chosen: dict[int, WorkerConnection] = {}
    extra: list[WorkerConnection] = []
    deadline = time.monotonic() + timeout
    try:
        while len(chosen) < workers:
            if time.monotonic() > deadline:
                raise AssertionError(f"only workers {sorted(chosen)} answered within {timeout}s")
            connection = open_connection(port)
            if connection.worker in chosen:
                extra.append(connection)
            else:
                chosen[connection.worker] = connection
            if len(extra) > 8:  # keep few open, but new ones must not reuse an old 4-tuple
                extra.pop(0).conn.close()
        yield [chosen[index] for index in sorted(chosen)]
    finally:
        for connection in [*chosen.values(), *extra]:
            connection.conn.close()


def until(check: Any, timeout: float, step: float = 0.001) -> float:
    """Call `check()` until it is true; the seconds it took (AssertionError past `timeout`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(step)
    return time.monotonic() - started
