"""Header text decoding that survives real mail (pure, stdlib only).

CPython's ``email`` package decodes each RFC 2047 encoded-word on its own and with the declared
charset only, so a GB2312 label on GBK text, or a multi-byte character split across two
encoded-words of a folded header, turns into replacement characters. Here adjacent
encoded-words of one charset are joined before decoding, labels are mapped to their supersets
(``gb2312`` → ``gb18030``, ``big5`` → ``big5hkscs``, ``iso-2022-jp`` → ``iso2022_jp_2``), raw
8-bit header bytes are tried as UTF-8 then GB18030, and the result never contains CR, LF, NUL
or other control characters (decoded text must not be able to inject header lines).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

__all__ = [
    "clean_text",
    "decode_bytes",
    "decode_header_value",
    "normalise_charset",
]

_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_2",
    "csiso2022jp": "iso2022_jp_2",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

# An encoded-word; tolerant of spaces and tabs inside the text (seen from broken mailers).
_EW = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?]*?)\?=")
_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FOLD = re.compile(r"\r?\n[ \t]")


def normalise_charset(label: str | None) -> str | None:
    """The Python codec to use for a MIME charset label, or None when it is unknown."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text in a declared (or missing, or wrong) charset without ever failing.

    The declared charset is tried strictly first, then UTF-8, then GB18030 (which accepts
    any GBK/GB2312 text), then the declared charset with replacement characters.
    """
    codec = normalise_charset(charset)
    tried: list[str] = []
    for candidate in (codec, "utf-8", "gb18030"):
        if candidate is None or candidate in tried:
            continue
        tried.append(candidate)
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec or "utf-8", errors="replace")


def clean_text(value: str) -> str:
    """A single line: control characters (CR, LF, NUL, ...) become spaces, tabs too."""
    return _CTRL.sub(" ", value.replace("\t", " ")).strip()


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        compact = re.sub(r"\s+", "", text)
        padded = compact + "=" * (-len(compact) % 4)
        try:
            return base64.b64decode(padded)
        except (binascii.Error, ValueError):
            return base64.b64decode(re.sub(r"[^A-Za-z0-9+/]", "", compact) + "==", validate=False)
    raw = re.sub(r"\s+", "", text).replace("_", " ").encode("ascii", "replace")
    return binascii.a2b_qp(raw)


def _raw_8bit(text: str) -> str:
    """Header text whose raw bytes were kept as surrogate escapes: decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    return decode_bytes(data, None)


def decode_header_value(value: str | None) -> str:
    """The Unicode text of a raw (possibly folded, encoded, 8-bit) header value, one line."""
    if not value:
        return ""
    text = _FOLD.sub(" ", str(value))
    text = _raw_8bit(text)
    parts: list[str] = []
    pending: list[tuple[str | None, bytes]] = []  # adjacent encoded-words: (charset, bytes)
    pos = 0

    def flush() -> None:
        merged: list[tuple[str | None, bytearray]] = []
        for cs, data in pending:
            if merged and merged[-1][0] == cs:
                merged[-1][1].extend(data)
            else:
                merged.append((cs, bytearray(data)))
        parts.extend(decode_bytes(bytes(data), cs) for cs, data in merged)
        pending.clear()

    for match in _EW.finditer(text):
        between = text[pos : match.start()]
        if pending and between.strip() == "":
            pass  # whitespace between adjacent encoded-words is not part of the text
        else:
            flush()
            parts.append(between)
        label = normalise_charset(match.group(1)) or match.group(1).lower()
        pending.append((label, _word_bytes(match.group(2), match.group(3))))
        pos = match.end()
    flush()
    parts.append(text[pos:])
    return re.sub(r" {2,}", " ", clean_text("".join(parts)))
