"""Writing audit entries: to the store (durably) and to the `tokengate.audit` log stream.

A change's entry goes to the store inside the change's own transaction (the store methods'
`audit=` argument); `logged` then puts the same entry on the log stream, so a JSON log carries
exactly the events the audit table holds. An entry with no change of its own (a refusal, a
security event) is appended on its own by `record`.
"""

from __future__ import annotations

import logging

from tokengate.core.audit import AuditEntry, as_document
from tokengate.storage.base import AuditStore

log = logging.getLogger("tokengate.audit")


def logged(entry: AuditEntry) -> None:
    """Put one entry on the log stream (`extra["audit"]`: the same object `audit --json` prints)."""
    document = as_document(entry)
    del document["position"]  # assigned by the database; the log line is written without it
    log.info("audit %s %s", entry.action.value, entry.outcome.value, extra={"audit": document})


async def record(store: AuditStore, entry: AuditEntry) -> None:
    """Append an entry that records no change of its own, and log it."""
    await store.append_audit(entry)
    logged(entry)
