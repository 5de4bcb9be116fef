"""Records ↔ SQL rows, shared by the SQLite and PostgreSQL backends, derived from `schema`.

A converter reads the record's fields in the table's column order with one `attrgetter` call
and runs only the columns' codecs (scopes, audiences, flags, event kinds); everything else
passes through untouched, so a row costs about what hand-written tuples did.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tokengate.core.audit import AuditEntry
from tokengate.core.decoys import DECOY_CLIENT, DECOY_TOKEN
from tokengate.core.models import AccessToken, AdminToken, Client, RevocationEvent
from tokengate.core.signing_keys import SigningKey
from tokengate.storage.schema import (
    ADMIN_TOKENS,
    AUDIT,
    CLIENT_METADATA,
    CLIENTS,
    EVENTS,
    SIGNING_KEYS,
    TOKENS,
    Table,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_R = TypeVar("_R", bound="DataclassInstance")


class RowCodec(Generic[_R]):
    """Converts records of one dataclass to rows of one table and back."""

    def __init__(self, table: Table, record: type[_R]) -> None:
        fields = tuple(f.name for f in dataclasses.fields(record))
        if fields != table.names:  # fail at import, not on the first query
            raise TypeError(f"{record.__name__} fields {fields} != {table.name} {table.names}")
        self._fields = operator.attrgetter(*table.names)
        self._codecs = [(i, c.codec) for i, c in enumerate(table.columns) if c.codec is not None]
        self._record = record

    def row(self, record: _R) -> tuple[Any, ...]:
        """Column values in the table's column order."""
        values = list(self._fields(record))
        for i, codec in self._codecs:
            values[i] = codec.encode(values[i])
        return tuple(values)

    def record(self, row: Sequence[Any]) -> _R:
        """The inverse of `row`."""
        values = list(row)
        for i, codec in self._codecs:
            values[i] = codec.decode(values[i])
        return self._record(*values)


CLIENT_ROWS = RowCodec(CLIENTS, Client)
TOKEN_ROWS = RowCodec(TOKENS, AccessToken)
EVENT_ROWS = RowCodec(EVENTS, RevocationEvent)
ADMIN_TOKEN_ROWS = RowCodec(ADMIN_TOKENS, AdminToken)
AUDIT_ROWS = RowCodec(AUDIT, AuditEntry)
SIGNING_KEY_ROWS = RowCodec(SIGNING_KEYS, SigningKey)

client_row = CLIENT_ROWS.row
client_from_row = CLIENT_ROWS.record
token_row = TOKEN_ROWS.row
token_from_row = TOKEN_ROWS.record
event_from_row = EVENT_ROWS.record
admin_token_row = ADMIN_TOKEN_ROWS.row
admin_token_from_row = ADMIN_TOKEN_ROWS.record
audit_from_row = AUDIT_ROWS.record
signing_key_row = SIGNING_KEY_ROWS.row
signing_key_from_row = SIGNING_KEY_ROWS.record


def audit_row(record: AuditEntry) -> tuple[Any, ...]:
    """The written columns of an entry (the database assigns `position`)."""
    return AUDIT_ROWS.row(record)[1:]


_METADATA_AT = [CLIENTS.names.index(name) for name in CLIENT_METADATA]


def client_update_params(client: Client) -> tuple[Any, ...]:
    """The parameters of `Dialect.update_client_metadata`: the metadata, then the id."""
    row = client_row(client)
    return (*(row[i] for i in _METADATA_AT), client.client_id)


# A lookup that finds nothing decodes a decoy row all the same (and drops it), so that looking
# up an unknown client id or token costs what finding one does (see `tokengate.core.decoys`).
# Lookups return `(found, *columns)`: SQLite's query returns the decoy itself on a miss.
DECOY_CLIENT_ROW = client_row(DECOY_CLIENT)
# The decoy's key is no digest (it must match nothing): stored form b"", 0 bytes, no stored key.
DECOY_TOKEN_ROW = (b"", *token_row(dataclasses.replace(DECOY_TOKEN, token_hash="0" * 64))[1:])
NO_CLIENT = (0, *DECOY_CLIENT_ROW)
NO_TOKEN = (0, *DECOY_TOKEN_ROW)


def found_client(lookup: Sequence[Any]) -> Client | None:
    """The client of a `(found, *columns)` lookup row; None for the decoy (at a hit's cost)."""
    client = client_from_row(lookup[1:])
    return client if lookup[0] else None


def found_token(lookup: Sequence[Any]) -> AccessToken | None:
    """The token of a `(found, *columns)` lookup row; None for the decoy (at a hit's cost)."""
    token = token_from_row(lookup[1:])
    return token if lookup[0] else None
