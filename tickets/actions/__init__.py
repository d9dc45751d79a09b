"""Actions: the only write path. Each validates, writes, audits and emits events in one unit."""

from __future__ import annotations

from tickets.actions import admin, customers, messages, tickets
from tickets.actions.ingest import IngestPolicy, IngestResult, ingest

__all__ = ["IngestPolicy", "IngestResult", "admin", "customers", "ingest", "messages", "tickets"]
