"""Architecture guards: pure cores stay pure; no import-time work; channel packages look alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("aiohttp", "socketio", "sqlmodel", "sqlalchemy", "redis", "rq")


@pytest.mark.parametrize("package", ["routing", "sla"])
def test_pure_cores_import_no_io_libraries(package):
    modules = sorted(p.stem for p in (ROOT / package).glob("*.py") if p.stem != "service")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        f"    importlib.import_module('{package}.' + m if m != '__init__' else '{package}')\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "", f"{package} core imported {out.stdout.strip()}"


def test_importing_the_app_opens_nothing(tmp_path):
    code = (
        "import contact_center.app, contact_center.cli, tickets.actions, channels\n"
        "import threading; print(threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert out.stdout.strip() == "1"
    assert not (tmp_path / "var").exists()


def test_every_channel_package_has_the_same_shape():
    for pkg in (p for p in (ROOT / "channels").iterdir() if p.is_dir() and p.name != "__pycache__"):
        assert (pkg / "__init__.py").exists(), pkg
        assert (pkg / "parse.py").exists(), f"{pkg.name}: parse.py (pure) is missing"
        assert (pkg / "README.md").exists(), f"{pkg.name}: README.md for operators is missing"
