"""Run one benchmark: ``python -m bench NAME`` runs ``bench/NAME.py``'s ``main()``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in _names():
        print(f"usage: python -m bench NAME [args]; NAME one of: {', '.join(_names())}")
        return 2
    module = importlib.import_module(f"bench.{argv[0]}")
    result = module.main(argv[1:])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
