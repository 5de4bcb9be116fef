"""Classify unexpected exceptions: a storage outage is 503, anything else is 500.

The classification belongs to the storage layer (`tokengate.storage.base.is_outage`), which
knows its drivers' errors without importing them: the server loads no database driver.
"""

from __future__ import annotations

from tokengate.storage.base import is_outage as is_storage_outage

__all__ = ["is_storage_outage"]
