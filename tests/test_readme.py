"""The README's configuration table lists every setting the code reads (derived, not typed)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from contact_center.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def _configuration_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Configuration")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_setting_is_in_the_readme_configuration_table():
    listed = set(re.findall(r"`(CC_[A-Z0-9_]+)`", _configuration_section()))
    settings = {f"CC_{f.name.upper()}" for f in fields(Settings)}
    missing = sorted(settings - listed)
    assert not missing, f"README configuration table lacks {missing}"
