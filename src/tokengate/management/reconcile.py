"""Declarative clients: the plan that takes the stored clients to the declared ones. Sans-I/O.

`plan(declared, stored, prune)` compares each declared client with the stored one of the same
id: missing → create; different metadata (or disabled) → update, which re-enables; a
different secret → set it (its digest is compared: the stored secret is never known) ; with
`prune`, an enabled stored client that is not declared → disable. An empty plan means the
store already matches, so a second apply changes nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from tokengate.core.models import Client
from tokengate.core.registration import ClientMetadata, metadata_of


@dataclass(frozen=True, slots=True)
class Declared:
    """One `[[client]]` of the file: its id, metadata and the digest of its secret."""

    client_id: str
    metadata: ClientMetadata
    secret_hash: str


class Kind(enum.Enum):
    """What a change does."""

    CREATE = "create"
    UPDATE = "update"
    SECRET = "secret"
    DISABLE = "disable"


@dataclass(frozen=True, slots=True)
class Change:
    """One step of a plan, with the differences it makes (field: (before, after))."""

    kind: Kind
    client_id: str
    differences: tuple[tuple[str, object, object], ...] = ()
    declared: Declared | None = None

    def describe(self) -> str:
        """One line of the `--dry-run` diff (never a secret)."""
        marks = {Kind.CREATE: "+", Kind.DISABLE: "-", Kind.UPDATE: "~", Kind.SECRET: "~"}
        text = f"{marks[self.kind]} {self.kind.value} {self.client_id}"
        parts = [f"{name}: {_show(old)} -> {_show(new)}" for name, old, new in self.differences]
        return text + (" (" + "; ".join(parts) + ")" if parts else "")


def plan(declared: Iterable[Declared], stored: Iterable[Client], prune: bool) -> list[Change]:
    """The changes, creates and updates in file order, then the disables in id order."""
    current = {c.client_id: c for c in stored}
    changes: list[Change] = []
    wanted: set[str] = set()
    for want in declared:
        wanted.add(want.client_id)
        changes += changes_for(want, current.get(want.client_id))
    if prune:
        extra = sorted(cid for cid, c in current.items() if cid not in wanted and not c.disabled)
        changes += [Change(Kind.DISABLE, cid) for cid in extra]
    return changes


def changes_for(want: Declared, have: Client | None) -> list[Change]:
    """The changes one declared client needs against its stored state (None: absent)."""
    if have is None:
        created = _differences(ClientMetadata(name=""), want.metadata)
        return [Change(Kind.CREATE, want.client_id, created, want)]
    changes: list[Change] = []
    # A file does not declare the auth method (both are accepted) nor keys: keep the stored.
    declared = replace(
        want.metadata, auth_method=have.auth_method, jwks=have.jwks, jwks_uri=have.jwks_uri
    )
    differences = _differences(metadata_of(have), declared)
    if have.disabled:
        differences += (("disabled", True, False),)
    if differences:
        changes.append(Change(Kind.UPDATE, want.client_id, differences, want))
    if have.secret_hash != want.secret_hash:
        changes.append(Change(Kind.SECRET, want.client_id, (), want))
    return changes


def _differences(
    old: ClientMetadata, new: ClientMetadata
) -> tuple[tuple[str, object, object], ...]:
    return tuple(
        (f.name, getattr(old, f.name), getattr(new, f.name))
        for f in fields(ClientMetadata)
        if getattr(old, f.name) != getattr(new, f.name)
    )


def _show(value: object) -> str:
    if isinstance(value, frozenset):
        return repr(" ".join(sorted(value)))
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)
