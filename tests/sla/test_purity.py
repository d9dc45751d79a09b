"""The SLA core is pure: stdlib only, and it never reads the clock."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "socketio", "sqlmodel", "sqlalchemy", "redis", "rq", "pydantic")
CORE = sorted(p for p in (ROOT / "sla").glob("*.py") if p.stem not in ("__init__", "service"))


def test_core_modules_import_no_io_libraries() -> None:
    names = [f"sla.{p.stem}" for p in CORE]
    code = (
        "import importlib, sys\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_core_modules_never_read_the_clock() -> None:
    clock_reads = re.compile(
        r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time|time\.monotonic|"
        r"time\.perf_counter|time\.sleep)\s*\("
    )
    for path in CORE:
        found = clock_reads.findall(path.read_text())
        assert not found, f"{path.name} reads the clock: {found}"
