"""`tokengate demo`: the whole flow on loopback, in one command, narrated.

Starts `tokengate serve` (temporary SQLite), `tokengate example-resource-server` and, in front
of it, the edge users should run in production: nginx with `tokengate authz` (the config
`tokengate edge-config nginx` prints) when nginx is installed, else `tokengate gateway --mode
bypass` (and says so). All are child processes on free ports; the clients are created with the
CLI; the flow is walked step by step and the demo exits 0 only if every step behaved as shown.
Children are stopped on success, failure, Ctrl-C or SIGTERM; their logs go to the work dir.
Tokens and secrets are only ever printed as a short prefix. For tests,
`TOKENGATE_DEMO_SECRETS_FILE` names a file the demo writes them to (to prove they leak nowhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import click
import httpx

from tokengate.cli.demo_flow import SHORT_TTL, Urls, short, walk
from tokengate.edge.configs import EdgeOptions, render
from tokengate.edge.configs.standalone import nginx_main

SECRETS_FILE_ENV = "TOKENGATE_DEMO_SECRETS_FILE"
TOKENGATE = [sys.executable, "-m", "tokengate"]


class Interrupted(Exception):
    """SIGTERM: unwind like Ctrl-C so every child is stopped."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """The demo's child processes, their addresses and its work dir."""

    workdir: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    passed: bool = False

    def start(
        self,
        name: str,
        args: list[str],
        ready: str,
        env: dict[str, str] | None = None,
        command: list[str] = TOKENGATE,
    ) -> None:
        """Run `tokengate ARGS` (or `command ARGS`; log to NAME.log) until `ready` answers."""
        with (self.workdir / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(  # noqa: S603  # our own interpreter (or nginx), fixed arguments
                [*command, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order
            )
        self.children.append((name, child))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise click.ClickException(f"{name} exited ({child.returncode}); see {log.name}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(ready, timeout=1)
                return
            time.sleep(0.05)
        raise click.ClickException(f"{name} did not come up within 30 s; see {log.name}")

    def stop(self) -> None:
        """Terminate every child (newest first), killing those that linger."""
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for _, child in reversed(self.children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def dead(self) -> list[str]:
        """Names of children that have exited."""
        return [name for name, child in self.children if child.poll() is not None]

    def remember(self, **secrets: str) -> None:
        """Keep secrets for the test hook (`TOKENGATE_DEMO_SECRETS_FILE`), if set."""
        self.secrets.update(secrets)
        target = os.environ.get(SECRETS_FILE_ENV)
        if target:
            Path(target).write_text(json.dumps(self.secrets))


def create_client(database: str, name: str, *options: str) -> tuple[str, str]:
    """`tokengate clients create NAME ... --json` → (client_id, client_secret)."""
    args = [*TOKENGATE, "clients", "create", name, "--database", database, "--json", *options]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603  # fixed arguments
    if done.returncode != 0:
        raise click.ClickException(f"creating client {name!r} failed: {done.stderr.strip()}")
    created = json.loads(done.stdout)
    return created["client_id"], created["client_secret"]


def start_stack(stack: Stack, events: bool, nginx: str | None) -> tuple[Urls, tuple[str, str]]:
    """Create the clients, start the three servers; returns their URLs and the app client."""
    database = f"sqlite:///{stack.workdir / 'tokengate.db'}"
    app = create_client(database, "demo-app", "--scope", "read")
    rs = create_client(database, "demo-rs", "--introspect")
    stack.remember(client_secret=app[1], rs_client_secret=rs[1])
    click.echo("Clients (tokengate clients create)")
    click.echo(f"  ✔ demo-app  --scope read   client_id {app[0]}  secret {short(app[1])}")
    click.echo(f"  ✔ demo-rs   --introspect   client_id {rs[0]}  secret {short(rs[1])}")
    ports = [free_port() for _ in range(3)]
    urls = Urls(*(f"http://127.0.0.1:{port}" for port in ports))
    serve = ["serve", "--port", str(ports[0]), "--database", database]
    stack.start("auth-server", serve, urls.auth + "/healthz")
    rs_args = ["example-resource-server", "--port", str(ports[1]), "--issuer", urls.auth]
    rs_args += ["--client-id", rs[0]] + ([] if events else ["--cache-max-ttl", f"{SHORT_TTL:g}"])
    secret = {"TOKENGATE_RS_CLIENT_SECRET": rs[1]}  # kept off the command line
    stack.start("resource-server", rs_args, urls.rs + "/public/ping", secret)
    if nginx is not None:
        urls.edge = "nginx + authz"
        start_edge(stack, database, nginx, urls, ports[2])
    else:
        gateway = ["gateway", "--mode", "bypass", "--upstream", urls.rs]
        gateway += ["--listen", f"127.0.0.1:{ports[2]}"]
        stack.start("gateway", gateway, urls.gateway + "/_tokengate/healthz")
    click.echo("Processes (their logs are in the work dir)")
    click.echo(f"  ✔ authorization server  {urls.auth}  tokengate serve, SQLite")
    click.echo(f"  ✔ resource server       {urls.rs}  tokengate example-resource-server")
    if nginx is not None:
        click.echo(
            f"  ✔ nginx + authz         {urls.gateway}  nginx auth_request → tokengate authz"
        )
    else:
        click.echo(
            f"  ✔ gateway, bypass mode  {urls.gateway}  tokengate gateway, in front of the RS"
        )
        click.echo("  (nginx is not installed: in production put nginx + tokengate authz here)")
    if not events:
        click.echo(f"  (no revocation events in this build: the RS caches for {SHORT_TTL:g} s)")
    return urls, app


def start_edge(stack: Stack, database: str, nginx: str, urls: Urls, port: int) -> None:
    """nginx on `port` in front of the RS, asking `tokengate authz` about every request."""
    edge = create_client(database, "demo-edge", "--introspect")
    stack.remember(edge_client_secret=edge[1])
    click.echo(f"  ✔ demo-edge --introspect   client_id {edge[0]}  secret {short(edge[1])}")
    authz_url = f"http://127.0.0.1:{free_port()}"
    authz = ["authz", "--port", authz_url.rsplit(":", 1)[1], "--issuer", urls.auth]
    authz += ["--client-id", edge[0], "--protect", "/auth-api/**"]
    authz += ["--require-scope", "POST /auth-api/items=write", "--realm", "tokengate-example"]
    stack.start("authz", authz, authz_url + "/healthz", {"TOKENGATE_AUTHZ_CLIENT_SECRET": edge[1]})
    options = EdgeOptions.parse(f"127.0.0.1:{port}", urls.rs, authz_url)
    root = stack.workdir / "nginx"
    root.mkdir(exist_ok=True)
    (root / "tokengate.conf").write_text(render("nginx", options))
    (root / "nginx.conf").write_text(nginx_main(root, root / "tokengate.conf"))
    args = ["-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
    stack.start("nginx", args, urls.gateway + "/public/ping", command=[nginx])


def serve_until_stopped(stack: Stack, urls: Urls, app: tuple[str, str]) -> None:
    """Print how to call the stack, then wait for Ctrl-C (or a child's death)."""
    env_file = stack.workdir / "demo-app.env"
    env_file.touch(mode=0o600)
    env_file.write_text(f"CLIENT_ID={app[0]}\nCLIENT_SECRET={app[1]}\n")
    take = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    click.echo(f"""
The stack keeps running; Ctrl-C stops it. The app client's credentials are in {env_file}.
  . {env_file}
  TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials -d scope=read \\
          {urls.auth}/oauth2/token | {take})
  curl -i -H "X-Access-Token: $TOKEN" {urls.gateway}/auth-api/hello
  curl -i {urls.gateway}/public/ping
  curl -s {urls.rs}/metrics | grep tokengate_rs_      # resource server metrics
  curl -s {urls.gateway}/_tokengate/metrics           # gateway metrics (without nginx)""")
    while not stack.dead():
        time.sleep(0.5)
    stack.passed = False
    raise click.ClickException(
        f"{', '.join(stack.dead())} stopped; see the logs in {stack.workdir}"
    )


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception for the duration, so cleanup runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous: Callable[[int, FrameType | None], object] | int | None = signal.signal(
        signal.SIGTERM, handler
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("demo")
@click.option("--keep-running", is_flag=True, help="Leave the stack up and show how to call it.")
@click.option(
    "--edge",
    type=click.Choice(["auto", "nginx", "gateway"]),
    default="auto",
    show_default=True,
    help="What stands in front of the resource server (auto: nginx + authz when installed).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the logs and database here (default: a temporary dir, removed after success).",
)
def demo(keep_running: bool, edge: str, workdir: Path | None) -> None:
    """Run the authorization server, a resource server and the edge; walk the flow."""
    nginx = None if edge == "gateway" else shutil.which("nginx")
    if edge == "nginx" and nginx is None:
        raise click.UsageError("--edge nginx: nginx is not installed (apt-get install nginx)")
    root = workdir or Path(tempfile.mkdtemp(prefix="tokengate-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    stack = Stack(root)
    shown = "nginx + tokengate authz" if nginx else "gateway (bypass)"
    click.echo(f"tokengate demo: client credentials → {shown} → resource server")
    click.echo(f"work dir: {root}")
    try:
        with sigterm_unwinds():
            run(stack, keep_running, nginx)
    except (KeyboardInterrupt, Interrupted):
        click.echo("\nstopping…")
    finally:
        stack.stop()
        if stack.passed and workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if not stack.passed:
        sys.exit(1)


def run(stack: Stack, keep_running: bool, nginx: str | None) -> None:
    """Start, walk, report; then serve until stopped when asked to."""
    events = True  # the resource-server library always follows revocation events
    urls, app = start_stack(stack, events, nginx)
    say = walk(urls, app, events, lambda token: stack.remember(access_token=token))
    stack.passed = say.failed == 0
    verdict = "every step behaved as shown" if stack.passed else f"see the logs in {stack.workdir}"
    click.echo(f"{say.count - say.failed} of {say.count} steps passed: {verdict}.")
    if stack.passed and keep_running:
        serve_until_stopped(stack, urls, app)
