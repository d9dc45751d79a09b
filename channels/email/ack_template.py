"""The automatic acknowledgement text, in English or Chinese (jinja2 templates)."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["LANGUAGES", "render_ack"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("en", "zh")


@functools.cache
def _env() -> jinja2.Environment:
    # Plain-text mail: nothing is rendered as HTML, and every value is already one clean line.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # noqa: S701 - plain-text mail, never HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_ack(language: str | None, *, ticket_id: int, name: str = "", subject: str = "") -> str:
    """The acknowledgement body; Chinese for ``zh*`` customers, English otherwise."""
    lang = "zh" if (language or "").lower().startswith("zh") else "en"
    template = _env().get_template(f"ack.{lang}.txt")
    return template.render(ticket_id=ticket_id, name=name[:100], subject=subject[:150])
