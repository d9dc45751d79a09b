"""Exports: data leaving the desk in bulk is audited before it is handed out."""

from __future__ import annotations

from typing import Any

from contact_center.db import Actor, UnitOfWork

__all__ = ["record_export"]


def record_export(uow: UnitOfWork, actor: Actor, report: str, detail: dict[str, Any]) -> None:
    """Audit ``report.export``: who took which report, for which range and scope, how many rows.

    The caller writes this before it sends the file, so an export nobody can account for
    never leaves.
    """
    uow.audit(actor, "report.export", "report", None, {"report": report, **detail})
