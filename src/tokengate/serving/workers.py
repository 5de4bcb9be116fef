"""Several worker processes on one listening socket: start, watch, replace, stop.

The parent binds and listens (`listen_sockets`: one `SO_REUSEPORT` socket per worker on the
same port, so the kernel spreads connections evenly), then starts `count` workers with
`multiprocessing`'s *spawn* method: each is a fresh interpreter that inherits nothing but its
socket and one pipe, and builds its own store and app, so no database connection, lock or
thread crosses a process boundary.

What the parent does (`Supervisor.run`):

- A worker says it is ready once its server listens (`WorkerLink.ready`); the parent logs when
  all are.
- A worker that exits before it was ready stops the whole server with exit status 3 (uvicorn's
  startup failure): the same configuration would fail again, and serving on fewer workers than
  asked for would hide the fault. Fail closed.
- A worker that dies after it was ready is replaced under the same index (so the one worker
  that runs singleton jobs, index 0, stays one). More than `MAX_RESTARTS` replacements within
  `RESTART_WINDOW` seconds stop the server (exit status 1) instead of crash-looping.
- SIGTERM or SIGINT: the parent closes its copies of the sockets and sends SIGTERM to every
  worker; each stops accepting, finishes its in-flight requests (uvicorn's graceful shutdown)
  and exits; a worker still running `stop_timeout` seconds later is killed. The parent then
  exits 0.
- A worker whose parent has died (its end of the pipe reads end-of-file) stops itself the same
  graceful way, so killing the parent with SIGKILL leaves no orphan serving.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("tokengate.workers")

READY = b"ready"
STARTUP_FAILURE = 3  # uvicorn's exit status for a server that could not start
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
BACKLOG = 2048  # uvicorn's default listen backlog


class WorkerLink:
    """A worker's end of its pipe to the parent."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def ready(self) -> None:
        """Tell the parent this worker serves."""
        with contextlib.suppress(OSError):
            self._conn.send_bytes(READY)

    def watch_parent(self) -> None:
        """Stop this process gracefully (SIGTERM to itself) once the parent is gone."""
        threading.Thread(target=self._watch, name="tokengate-parent-watch", daemon=True).start()

    def _watch(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                self._conn.recv_bytes()  # the parent sends nothing: this returns at EOF
        os.kill(os.getpid(), signal.SIGTERM)


# A worker's body: (its index, the listening socket, its link) → serves until stopped. It must
# be picklable (a module-level function, or a functools.partial of one with picklable values).
WorkerTarget = Callable[[int, socket.socket, WorkerLink], None]


def listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` TCP sockets listening on one (host, port) with `SO_REUSEPORT`, one per worker.

    With one socket shared by every worker, an idle worker wins nearly every `accept` and a
    burst of new connections lands on one process (measured: 32 of 32). With one socket each
    in a `SO_REUSEPORT` group the kernel spreads connections by their address hash. The
    sockets are the parent's, so a worker's backlog outlives the worker: connections that
    arrive while it is replaced wait for its replacement instead of being reset. Without
    `SO_REUSEPORT` (not Linux or BSD) every worker shares one socket.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        return [_listen(host, port, reuse_port=False)]
    # A socket without SO_REUSEPORT binds only a free port: so a server already listening
    # there (another tokengate with workers included) is refused, not silently joined.
    with _bound(host, port) as probe:
        port = probe.getsockname()[1]
    sockets: list[socket.socket] = []
    try:
        sockets += [_listen(host, port, reuse_port=True) for _ in range(count)]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = _bound(host, port, reuse_port=reuse_port)
    try:
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _worker_main(target: WorkerTarget, index: int, sock: socket.socket, conn: Connection) -> None:
    link = WorkerLink(conn)
    link.watch_parent()
    target(index, sock, link)


@dataclass(slots=True)
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    ready: bool = False
    conn_open: bool = True


@dataclass(slots=True)
class Supervisor:
    """Runs `count` copies of `target` until SIGTERM/SIGINT (see the module doc); worker i
    serves on `sockets[i % len(sockets)]`."""

    target: WorkerTarget
    sockets: list[socket.socket]
    count: int
    stop_timeout: float = 10.0
    _workers: list[_Worker] = field(default_factory=list)
    _restarts: deque[float] = field(default_factory=deque)
    _all_ready: bool = False

    def run(self) -> int:
        """Serve until stopped; the exit status (0 after a requested stop)."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = _catch_stop_signals(wake_write.fileno())
        try:
            self._workers = [self._start(index) for index in range(self.count)]
            log.info("started %d workers: pids %s", self.count, self._pids())
            status = self._watch(wake_read)
        finally:
            self._stop_all()
            _restore_signals(previous)
            wake_read.close()
            wake_write.close()
        return status

    def _start(self, index: int) -> _Worker:
        ours, theirs = multiprocessing.Pipe()
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=_worker_main,
            args=(self.target, index, self.sockets[index % len(self.sockets)], theirs),
            name=f"tokengate-worker-{index}",
        )
        process.start()
        theirs.close()  # the worker holds its own copy: at its exit ours reads EOF
        return _Worker(index, process, ours)

    def _watch(self, wake: socket.socket) -> int:
        while True:
            sources: list[object] = [wake]
            for worker in self._workers:
                sources.append(worker.process.sentinel)
                if worker.conn_open:
                    sources.append(worker.conn)
            readable = wait(sources)  # type: ignore[arg-type]
            if wake in readable:
                log.info("stopping %d workers", len(self._workers))
                return 0
            for worker in list(self._workers):
                if worker.conn in readable:
                    self._hear(worker)
                if worker.process.sentinel in readable:
                    status = self._exited(worker)
                    if status is not None:
                        return status

    def _hear(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            worker.conn_open = False  # the worker is exiting: its sentinel follows
            return
        if message == READY and not worker.ready:
            worker.ready = True
            if not self._all_ready and all(w.ready for w in self._workers):
                self._all_ready = True
                log.info("all %d workers ready", self.count)

    def _exited(self, worker: _Worker) -> int | None:
        """Replace a worker that died while serving; an exit status to stop with otherwise."""
        worker.process.join()
        code = worker.process.exitcode
        worker.conn.close()
        if not worker.ready:
            log.error("worker %d (pid %s) failed to start (exit %s): stopping",
                      worker.index, worker.process.pid, code)  # fmt: skip
            return STARTUP_FAILURE
        now = time.monotonic()
        while self._restarts and self._restarts[0] < now - RESTART_WINDOW:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            log.error("workers died %d times within %g s: stopping", MAX_RESTARTS, RESTART_WINDOW)
            return 1
        self._restarts.append(now)
        replacement = self._start(worker.index)
        self._workers[self._workers.index(worker)] = replacement
        log.error("worker %d (pid %s) died (exit %s): replaced by pid %s",
                  worker.index, worker.process.pid, code, replacement.process.pid)  # fmt: skip
        return None

    def _stop_all(self) -> None:
        for sock in self.sockets:  # once the workers close theirs, new connections are refused
            sock.close()
        running = [w for w in self._workers if w.process.exitcode is None]
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for worker in running:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.error("worker %d did not stop within %g s: killed",
                          worker.index, self.stop_timeout)  # fmt: skip
                worker.process.kill()
                worker.process.join()
        for worker in self._workers:
            worker.conn.close()

    def _pids(self) -> str:
        return ", ".join(str(w.process.pid) for w in self._workers)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], object] | int | None


def _catch_stop_signals(wakeup_fd: int) -> tuple[int, list[_Handler]]:
    """SIGTERM/SIGINT write to `wakeup_fd` (which wakes `wait`) instead of killing the parent."""
    handlers = [signal.signal(sig, lambda sig, frame: None) for sig in _STOP_SIGNALS]
    return signal.set_wakeup_fd(wakeup_fd), handlers


def _restore_signals(previous: tuple[int, list[_Handler]]) -> None:
    fd, handlers = previous
    signal.set_wakeup_fd(fd)
    for sig, handler in zip(_STOP_SIGNALS, handlers, strict=True):
        signal.signal(sig, handler)
