"""IMAP wire helpers (pure): UID sets and FETCH responses as aioimaplib hands them over."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["fetch_records", "uid_set"]

_FETCH = re.compile(rb"^\d+ FETCH \(")
_LITERAL = re.compile(rb"\{(\d+)\}$")


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10]."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = prev = ordered[0] if ordered else 0
    for uid in ordered[1:]:
        if uid != prev + 1:
            runs.append(f"{start}:{prev}" if prev != start else str(start))
            start = uid
        prev = uid
    if ordered:
        runs.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(runs)


def fetch_records(lines: list[Any]) -> list[tuple[bytes, bytes | None]]:
    """(metadata, literal) pairs of a FETCH response (literals arrive as bytearray)."""
    out: list[tuple[bytes, bytes | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if isinstance(line, bytearray) or not _FETCH.match(line):
            continue
        head, data = bytes(line), None
        if _LITERAL.search(head) and i < len(lines) and isinstance(lines[i], bytearray):
            data = bytes(lines[i])
            i += 1
            if i < len(lines) and isinstance(lines[i], bytes) and lines[i][:1] in (b")", b" "):
                head += b" " + lines[i]
                i += 1
        out.append((head, data))
    return out
