"""Small text helpers for mail bodies (pure): HTML to text, file names, language guess."""

from __future__ import annotations

import mimetypes
import re
from html.parser import HTMLParser

from channels.email.headers import clean_text, decode_header_value

__all__ = ["attachment_name", "html_to_text", "language_of"]

_BLOCK = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr"}
)
_SKIP = frozenset({"script", "style", "head", "title"})
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_LANG = re.compile(r"^\s*([A-Za-z]{2})(?:[-_][A-Za-z0-9]{2,8})?")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (scripts and styles dropped)."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except (ValueError, AssertionError):
        pass
    text = "".join(parser.chunks)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def attachment_name(raw: str | None, content_type: str, index: int) -> str:
    """A safe file name: decoded, no path, no control characters, at most 200 characters."""
    name = clean_text(decode_header_value(raw)) if raw else ""
    name = re.split(r"[/\\]", name)[-1].strip().lstrip(".")
    if not name:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{ext}"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 190 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name


def language_of(content_language: str | None, subject: str, text: str) -> str | None:
    """``Content-Language`` when given, else ``zh`` for Chinese text, else None."""
    if content_language:
        match = _LANG.match(decode_header_value(content_language))
        if match:
            return match.group(1).lower()
    sample = subject + " " + text[:2000]
    if _KANA.search(sample):
        return "ja"
    return "zh" if len(_CJK.findall(sample)) >= 2 else None
