"""`tokengate audit`: read the audit log, from the database or a server's management API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from tokengate.cli.target import Target, target_options
from tokengate.management.operations import Document, Operations

PAGE = 1000


def parse_since(value: str | None) -> int:
    """Epoch seconds, an ISO 8601 time (UTC unless it says), or an age: `90s`, `15m`, `2h`, `7d`."""
    if value is None:
        return 0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    if value[-1:] in units and value[:-1].isdigit():
        return int(time.time()) - int(value[:-1]) * units[value[-1]]
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use epoch seconds, an ISO 8601 time or an age like 15m", param_hint="--since"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@click.command()
@click.option("--since", help="Only entries at or after: epoch, ISO 8601, or an age (15m, 2h).")
@click.option("--client", "client_id", help="Only entries about this client id.")
@target_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit(since: str | None, client_id: str | None, target: Target, as_json: bool) -> None:
    """Print the audit log, oldest first: who did what to which client, and how it ended."""
    start = parse_since(since)

    async def act(ops: Operations) -> list[Document]:
        found: list[Document] = []
        after = 0
        while page := await ops.audit(start, client_id, after, PAGE):
            found += page
            after = page[-1]["position"]
        return found

    for entry in target.run(act):
        click.echo(json.dumps(entry, separators=(",", ":")) if as_json else _line(entry))


def _line(entry: Document) -> str:
    when = datetime.fromtimestamp(entry["occurred_at"], UTC).isoformat()
    fields = [when, entry["actor"], entry["action"], entry["outcome"]]
    fields += [entry["client_id"] or "-", entry["target"] or "-", json.dumps(entry["detail"])]
    return "\t".join(fields)
