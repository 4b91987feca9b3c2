"""Reading the files departments send: gzip or not, and in which text encoding.

Every importer (cases, posts, catalog datasets) meets the same files: CSV or JSON exported by
office software or an old system, sometimes gzip'd, in UTF-8, UTF-8 with a BOM or GB18030 (of
which GBK and GB2312 are subsets), now and then UTF-16 or not text at all. The checks live here
once so that a file is judged the same way whichever importer reads it. Plain Python: no Django.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "GZIP_MAGIC",
    "SNIFF_BYTES",
    "EncodingMismatch",
    "choose_encoding",
    "decompressed",
    "detect_encoding",
    "is_gzip",
    "open_binary",
    "read_head",
    "text_problem",
    "undecodable_line",
]

SNIFF_BYTES = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# What a damaged or cut gzip stream raises while it is read.
DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile)


class EncodingMismatch(ValueError):
    """The first bytes of a file are in none of the encodings asked for."""

    def __init__(self, line: int, byte: int, encodings: Iterable[str]):
        self.line, self.byte, self.encodings = line, byte, tuple(encodings)
        super().__init__(
            f"line {line} is not {' or '.join(self.encodings)} text (byte 0x{byte:02x})"
        )


def is_gzip(path: str | Path) -> bool:
    """Whether ``path`` is gzip'd, known by its magic number (not by a ``.gz`` suffix)."""
    with open(path, "rb") as raw:
        return raw.read(2) == GZIP_MAGIC


def decompressed(raw: BinaryIO) -> BinaryIO:
    """``raw`` (a binary file at its start) as its content: unzipped when it is gzip.

    The caller keeps ``raw`` to close it and to ask its position (compressed bytes read so far,
    what a progress bar over the file's size wants)."""
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw


@contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """The content of ``path`` as bytes, unzipped when it is gzip."""
    with open(path, "rb") as raw:
        stream = decompressed(raw)
        try:
            yield stream
        finally:
            if stream is not raw:
                stream.close()


def read_head(path: str | Path, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of the content of ``path`` (unzipped).

    Raises OSError when the file cannot be read and one of ``DAMAGED`` when a gzip is broken
    within those bytes."""
    with open_binary(path) as stream:
        return stream.read(size)


def text_problem(head: bytes, *, what: str = "text") -> str | None:
    """Why a file starting with ``head`` cannot be read as text, or None.

    The reason reads after the file's name: ``f"{path}: {reason}"``."""
    if not head.strip():
        return "is empty"
    if head.startswith(UTF16_BOMS):
        return "is UTF-16 text; save it as UTF-8"
    if b"\x00" in head:
        return f"is not {what} (it holds NUL bytes: a binary file?)"
    return None


def detect_encoding(head: bytes) -> str:
    """UTF-8 (``utf-8-sig`` with a BOM) or GB18030, from the first bytes of a file.

    A few undecodable sequences among many good multi-byte characters are damaged lines in a
    UTF-8 file; a file where most non-ASCII text fails UTF-8 is GB18030 (which reads any GBK or
    GB2312 text too). The head may end in the middle of a character: that is not a fault."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoded = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
    broken = decoded.count("\ufffd")
    if not broken:
        return "utf-8"
    good = sum(1 for ch in decoded if ord(ch) > 127) - broken
    return "utf-8" if good >= 20 * broken else "gb18030"


def choose_encoding(head: bytes, encodings: Iterable[str]) -> str:
    """The first of ``encodings`` that reads ``head`` (``utf-8-sig`` if it starts with a BOM).

    Raises :class:`EncodingMismatch` naming the line of the first byte the first encoding
    cannot read."""
    encodings = tuple(encodings)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    first_error = None
    for encoding in encodings:
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return encoding
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    if first_error is None:
        raise ValueError("choose_encoding needs at least one encoding")
    line = head[: first_error.start].count(b"\n") + 1
    raise EncodingMismatch(line, head[first_error.start], encodings)


def undecodable_line(path: str | Path, encoding: str) -> int:
    """The first physical line of ``path`` that ``encoding`` cannot read, or 0 if none.

    For error messages only: it reads the file again, line by line."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open_binary(path) as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    decoder.decode(line)
                except UnicodeDecodeError:
                    return number
    except (OSError, *DAMAGED):
        pass
    return 0
