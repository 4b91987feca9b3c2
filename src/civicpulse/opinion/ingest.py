"""How posts come in from files and feeds, and where they come from (sources).

    civicpulse import posts FILE [--source NAME] [--mapping NAME | --mapping FILE.toml]
    civicpulse poll feeds
    civicpulse sources add NAME --kind file|feed|push [--url URL]

Readers turn what they read into :class:`RawPost` or :class:`Refusal` (records.py) and nothing
else; ``posts.store`` validates, de-duplicates, scores and keeps them. A reader refuses what only
it can see is wrong (a row with the wrong number of fields, bytes the encoding cannot read, a
time no format reads, an empty or oversized text, a feed that is not a feed) and goes on with
the rest. A file it cannot read at all (missing, empty, binary, a mapping that does not fit its
header) raises :class:`IngestFailed` before anything is stored.

Files are JSONL (one JSON object a line) or CSV, plain or gzip (known by the gzip magic number,
so ``.csv.gz`` and a gzip without the suffix both work), in UTF-8, UTF-8 with a BOM or GB18030.
The encoding is detected from the first MiB: a BOM means UTF-8; text that reads as UTF-8 with at
most a stray broken line is UTF-8 (the broken line is refused, the rest imported); otherwise it
is GB18030, of which GBK and GB2312 are subsets. Each line is decoded on its own, so one damaged
line costs one row, not the file.

A *mapping* (TOML) says which of the file's columns (CSV) or keys (JSONL; ``user.id`` reaches
into a nested object) become which field of a post. Built-in mappings live in
``opinion/mappings/`` (``generic``: our own field names, the push API's; ``weibo2020``: the
COVID-19 Weibo daily files); ``--mapping`` names one of them or a TOML file::

    name = "..."                   what the layout is, for people
    source = "weibo2020"           the Source to import into, unless --source names one
    format = "csv"                 "csv" | "jsonl" (default: from the file name, else sniffed)
    encoding = "auto"              "auto" (UTF-8 / UTF-8-BOM / GB18030) or a codec name
    delimiter = ","                CSV only
    timezone = "Asia/Shanghai"     for times without an offset (default: the platform's)
    optional_columns = [...]       mapped columns a file may lack (their fields stay empty)

    [columns]                      post field = the file's column; text may be a list of
    id = "mid"                     columns, joined by a line break (e.g. ["title", "body"])
    text = "text"                  required: text and time, and id or [id] derive
    time = "created_at"            also: author, url, reach, reposts, lon, lat, place

    [id]
    derive = ["date", "userid", "text"]   for files without a post id: the id is a hash of
                                          these columns, the same on every run
    [time]
    formats = ["iso", "%Y-%m-%d"]  tried in order: "iso" (ISO 8601), "epoch" (seconds),
                                   "epoch_ms", or strptime formats

Column names match ignoring case, spaces and punctuation. Line numbers are physical lines of the
file (a CSV header is line 1; a record spanning lines is numbered by its first).

Feeds are RSS 2.0 or Atom, fetched with a conditional GET (the source's ETag and Last-Modified),
a time limit, a size limit and our User-Agent, and parsed by feedparser from the bytes we
fetched (never from a URL or a file name). See :func:`poll_feeds`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import logging
import math
import re
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from http.client import HTTPException
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from civicpulse.core import audit
from civicpulse.core.files import SNIFF_BYTES, decompressed, detect_encoding, text_problem
from civicpulse.opinion.models import IngestBatch, Source
from civicpulse.opinion.records import MAX_TEXT, RawPost, Refusal

log = logging.getLogger(__name__)

MAPPINGS_DIR = Path(__file__).with_name("mappings")
DEFAULT_MAPPING = "generic"
RAW_LIMIT = 2000  # characters of a refused row kept in the quarantine
SHOWN_REASONS = 5
FIELDS = ("id", "text", "time", "author", "url", "reach", "reposts", "lon", "lat", "place")
TIME_KINDS = ("iso", "epoch", "epoch_ms")
SOURCE_NAME = re.compile(r"[\w.\-]{1,64}")  # no ':' (post keys are "source:id"), no spaces

MAX_FEED_BYTES = 5 * 1024 * 1024
FEED_TIMEOUT = 20.0  # seconds for the whole fetch, not only for each read
USER_AGENT = "CivicPulse feed reader/0.1 (city opinion desk; conditional GET)"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


class IngestFailed(Exception):
    """A file cannot be imported at all; the message is one line naming the file and where."""


class SourceError(Exception):
    """A source cannot be added or changed as asked; the message says why."""


class _Bad(Exception):
    """One row refused: the column at fault and why."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _norm(name: str) -> str:
    """A column name as matched: case, spaces and punctuation ignored."""
    return re.sub(r"[\W_]+", "_", name.casefold()).strip("_")


def _cut(text: str, limit: int = RAW_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def derived_id(*parts: str) -> str:
    """A post id for sources that give none: the same parts give the same id on every run, so
    a re-import recognises what it stored before."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------- mapping files


@dataclass(frozen=True)
class PostMapping:
    """A mapping file, checked."""

    label: str  # the built-in name or the file's path
    name: str
    source: str  # "" when the mapping names none
    format: str | None  # "csv" | "jsonl" | None (from the file)
    encoding: str  # "auto" or a codec name
    delimiter: str
    tz: ZoneInfo
    columns: dict[str, tuple[str, ...]]  # post field -> the file's column(s)
    derive: tuple[str, ...]
    time_formats: tuple[str, ...]
    optional: frozenset[str]  # normalised column names a file may lack

    def needed_columns(self) -> list[str]:
        seen, out = set(), []
        for column in [c for cols in self.columns.values() for c in cols] + list(self.derive):
            if _norm(column) not in seen:
                seen.add(_norm(column))
                out.append(column)
        return out


_KEYS = {
    "": {
        "name",
        "source",
        "format",
        "encoding",
        "delimiter",
        "timezone",
        "optional_columns",
        "columns",
        "id",
        "time",
    },
    "columns": set(FIELDS),
    "id": {"derive"},
    "time": {"formats"},
}


def load_mapping(path: str | Path, *, label: str | None = None) -> PostMapping:
    """Read and check a mapping file; any fault is an IngestFailed naming the file and key."""
    path = Path(path)
    where = label or str(path)

    def fail(key: str, message: str) -> IngestFailed:
        return IngestFailed(f"mapping {where}: {key} {message}")

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IngestFailed(f"mapping {where}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise IngestFailed(f"mapping {where}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise IngestFailed(f"mapping {where}: is not valid TOML ({exc})") from None

    def table(key: str) -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise fail(key, "must be a table ([section])")
        unknown = sorted(set(value) - _KEYS[key])
        if unknown:
            known = ", ".join(sorted(_KEYS[key]))
            raise fail(f"[{key}] {unknown[0]}", f"is not a known key (known: {known})")
        return value

    def strings(value, key: str) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(key, "must be a string or a list of non-empty strings")
        return [v.strip() for v in value]

    def text(key: str, default: str = "") -> str:
        value = doc.get(key, default)
        if not isinstance(value, str):
            raise fail(key, "must be a string")
        return value.strip()

    unknown = sorted(set(doc) - _KEYS[""])
    if unknown:
        raise fail(unknown[0], f"is not a known key (known: {', '.join(sorted(_KEYS['']))})")
    columns_table, id_table, time_table = table("columns"), table("id"), table("time")

    source = text("source")
    if source and not SOURCE_NAME.fullmatch(source):
        raise fail("source", "must be 1-64 letters, digits, '.', '-' or '_'")
    fmt = text("format") or None
    if fmt not in (None, "csv", "jsonl"):
        raise fail("format", 'must be "csv" or "jsonl"')
    encoding = text("encoding", "auto") or "auto"
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise fail("encoding", f"{encoding!r} is not an encoding Python knows") from None
    delimiter = doc.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise fail("delimiter", "must be one character")
    tz_name = text("timezone") or settings.TIME_ZONE
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"{tz_name!r} is not a known time zone") from None

    columns: dict[str, tuple[str, ...]] = {}
    for key, value in columns_table.items():
        names = strings(value, f"[columns] {key}")
        if len(names) > 1 and key != "text":
            raise fail(f"[columns] {key}", "must name one column (only text may join several)")
        columns[key] = tuple(names)
    for key in ("text", "time"):
        if key not in columns:
            raise fail(f"[columns] {key}", "is required")
    derive = tuple(strings(id_table["derive"], "[id] derive")) if "derive" in id_table else ()
    if ("id" in columns) == bool(derive):
        raise fail("[columns] id", "or [id] derive is required, and not both")
    formats = strings(time_table.get("formats", []), "[time] formats")
    if not formats:
        raise fail("[time] formats", 'is required ("iso", "epoch", "epoch_ms" or strptime)')
    for f in formats:
        if f not in TIME_KINDS and "%" not in f:
            raise fail(
                "[time] formats", f'{f!r} is neither "iso", "epoch", "epoch_ms" nor strptime'
            )
    optional = strings(doc.get("optional_columns", []), "optional_columns")
    for key in ("text", "time", "id"):
        for column in columns.get(key, ()):
            if _norm(column) in {_norm(c) for c in optional}:
                raise fail("optional_columns", f"cannot hold {column!r}: a post needs its {key}")
    return PostMapping(
        label=label or str(path),
        name=text("name") or path.stem,
        source=source,
        format=fmt,
        encoding=encoding,
        delimiter=delimiter,
        tz=tz,
        columns=columns,
        derive=derive,
        time_formats=tuple(formats),
        optional=frozenset(_norm(c) for c in optional),
    )


def mappings() -> dict[str, Path]:
    """The built-in mappings: name -> file."""
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.toml"))}


def mapping(name_or_path: str | Path | None) -> PostMapping:
    """A built-in mapping by name, or a mapping file by path; the generic one for None."""
    name = str(name_or_path or DEFAULT_MAPPING)
    known = mappings()
    if name in known:
        return load_mapping(known[name], label=name)
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        return load_mapping(path)
    raise IngestFailed(f"unknown mapping {name!r}: give a TOML file or one of {', '.join(known)}")


# --------------------------------------------------------------------------- values


class _Clock:
    """Time values -> aware datetimes, in the mapping's formats; repeated values are cached
    (a daily file has one date for thousands of rows)."""

    def __init__(self, formats: tuple[str, ...], tz: ZoneInfo):
        self.formats, self.tz = formats, tz
        self.cache: dict[str, datetime] = {}

    def parse(self, value) -> datetime:
        """ValueError naming the value when no format reads it."""
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a time")
        key = value if isinstance(value, str) else repr(value)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        moment = self._parse(value)
        if len(self.cache) > 100_000:
            self.cache.clear()
        self.cache[key] = moment
        return moment

    def _parse(self, value) -> datetime:
        text = value.strip() if isinstance(value, str) else ""
        for fmt in self.formats:
            try:
                if fmt in ("epoch", "epoch_ms"):
                    number = float(value) if isinstance(value, int | float) else float(text)
                    if not math.isfinite(number):
                        continue
                    return datetime.fromtimestamp(number / (1000 if fmt == "epoch_ms" else 1), UTC)
                if not text:
                    continue
                moment = (
                    datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)
                )
            except (ValueError, OverflowError, OSError):
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=self.tz)
        shown = value if isinstance(value, str) else json.dumps(value)
        raise ValueError(f"{_cut(str(shown), 60)!r} is not a time in {' or '.join(self.formats)}")


def _text_of(value, column: str) -> str:
    """A column's value as text; a JSON number becomes its digits, an object is refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise _Bad(column, "holds a list or an object, not a single value")


def _whole(value, column: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        digits = value.strip().replace(",", "").replace("_", "")
        if re.fullmatch(r"[+-]?\d+(\.0*)?", digits):
            return int(digits.split(".")[0])
    raise _Bad(column, f"{_cut(str(value), 40)!r} is not a whole number")


def _coordinate(value, column: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _Bad(column, f"{_cut(str(value), 40)!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise _Bad(column, f"{_cut(str(value), 40)!r} is not a finite number")
    return number


class _Fields:
    """One record -> a RawPost. Columns are resolved once per file to keys of the record (an
    index into a CSV row, a key of a JSON object); ``value(record, key)`` reads one, and gives
    None for a key the file lacks."""

    TEXTS = ("author", "url", "place")
    WHOLE = ("reach", "reposts")
    POINT = ("lon", "lat")

    def __init__(self, m: PostMapping, source: str, resolve: Callable, value: Callable):
        self.m, self.source, self.value = m, source, value
        self.clock = _Clock(m.time_formats, m.tz)
        self.name = {f: cols[0] for f, cols in m.columns.items()}  # as refusals name them
        self.key = {f: resolve(cols[0]) for f, cols in m.columns.items()}
        self.texts = [(resolve(c), c) for c in m.columns["text"]]
        self.derive = [(resolve(c), c) for c in m.derive]
        self.extra = [
            (f, self.key[f], self.name[f], kind)
            for kinds, kind in ((self.TEXTS, "text"), (self.WHOLE, "whole"), (self.POINT, "point"))
            for f in kinds
            if f in self.key
        ]

    def post(self, record, line: int) -> RawPost:
        value, name = self.value, self.name
        if len(self.texts) == 1:
            key, column = self.texts[0]
            text = _text_of(value(record, key), column).strip()
        else:
            parts = (_text_of(value(record, k), c).strip() for k, c in self.texts)
            text = "\n".join(t for t in parts if t)
        if not text:
            raise _Bad(name["text"], "is empty: a post needs its text")
        if len(text) > MAX_TEXT:
            raise _Bad(name["text"], f"is longer than {MAX_TEXT:,} characters ({len(text):,})")
        raw_time = value(record, self.key["time"])
        if raw_time is None or raw_time == "":
            raise _Bad(name["time"], "is empty: a post needs its time")
        try:
            created = self.clock.parse(raw_time)
        except ValueError as exc:
            raise _Bad(name["time"], str(exc)) from None
        if self.derive:
            external_id = derived_id(
                *(_text_of(value(record, k), c).strip() for k, c in self.derive)
            )
        else:
            external_id = _text_of(value(record, self.key["id"]), name["id"]).strip()
            if not external_id:
                raise _Bad(name["id"], "is empty: a post needs its id")
        post = RawPost(self.source, external_id, text, created, line=line)
        for field, key, column, kind in self.extra:
            raw = value(record, key)
            if kind == "text":
                setattr(post, field, _text_of(raw, column).strip())
            elif kind == "whole":
                setattr(post, field, _whole(raw, column))
            else:
                setattr(post, field, _coordinate(raw, column))
        return post


# --------------------------------------------------------------------------- reading files


class PostFile:
    """A JSONL or CSV file of posts, read as RawPost | Refusal in file order.

    Open it to check it can be read at all (IngestFailed otherwise); iterate once to read it.
    ``size`` and ``position()`` are in the file's bytes (compressed bytes for gzip), for a
    progress bar."""

    def __init__(self, path: str | Path, m: PostMapping, source: str):
        self.path, self.m, self.source = Path(path), m, source
        if not self.path.is_file():
            raise IngestFailed(f"{self.path}: no such file")
        try:
            self.size = self.path.stat().st_size
            stream = self._open()
            try:
                head = stream.read(SNIFF_BYTES)
            finally:
                self._close(stream)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise IngestFailed(f"{self.path}: the file is damaged ({_why(exc)})") from None
        except OSError as exc:
            raise IngestFailed(f"{self.path}: cannot be read ({_why(exc)})") from None
        problem = text_problem(head)
        if problem:
            raise IngestFailed(f"{self.path}: {problem}")
        self.encoding = detect_encoding(head) if m.encoding == "auto" else m.encoding
        if self.encoding == "utf-8-sig":
            self.encoding = "utf-8"  # the BOM is dropped from the first line below
        self.format = m.format or self._guess_format(head)
        self._raw = None

    def _guess_format(self, head: bytes) -> str:
        suffixes = [s.lower() for s in self.path.suffixes if s.lower() != ".gz"]
        last = suffixes[-1] if suffixes else ""
        if last in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        if last in (".csv", ".tsv", ".txt"):
            return "csv"
        return "jsonl" if head.lstrip(codecs.BOM_UTF8).lstrip().startswith(b"{") else "csv"

    def _open(self):
        """The file's bytes, decompressed when it is gzip (known by its magic number); close
        with ``_close``."""
        raw = open(self.path, "rb")  # noqa: SIM115 - closed by _close
        self._raw = raw
        return decompressed(raw)

    def _close(self, stream) -> None:
        for handle in (stream, self._raw):
            try:
                handle.close()
            except (OSError, ValueError):
                pass

    def position(self) -> int:
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (OSError, ValueError):
            return 0

    def _lines(self, stream, broken: dict[int, str]) -> Iterator[str]:
        """The file's physical lines as text; a line the encoding cannot read is noted in
        ``broken`` (and passed on with U+FFFD, for the CSV reader to keep its place)."""
        encoding = self.encoding
        for number, raw in enumerate(stream, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                broken[number] = (
                    f"is not {encoding} text (byte 0x{exc.object[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line)"
                )
                yield raw.decode(encoding, errors="replace")

    def __iter__(self) -> Iterator[RawPost | Refusal]:
        stream = self._open()
        broken: dict[int, str] = {}
        last = 0
        try:
            rows = (
                self._csv(stream, broken) if self.format == "csv" else self._jsonl(stream, broken)
            )
            for item in rows:
                last = item.line
                yield item
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            yield Refusal(
                last + 1,
                f"the file is damaged after line {last} ({_why(exc)}); the rest was not read",
            )
        finally:
            self._close(stream)

    def _refusal(self, line: int, bad: _Bad, raw: str) -> Refusal:
        return Refusal(line, bad.reason, bad.field, _cut(raw))

    def _csv(self, stream, broken: dict[int, str]) -> Iterator[RawPost | Refusal]:
        reader = csv.reader(self._lines(stream, broken), delimiter=self.m.delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise IngestFailed(f"{self.path}: has no header line") from None
        except csv.Error as exc:
            raise IngestFailed(f"{self.path}: line 1 is not a CSV header ({exc})") from None
        if 1 in broken:
            raise IngestFailed(
                f"{self.path}: the header {broken[1]}; name the encoding in the mapping"
            )
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(_norm(name), i)
        missing = [
            c
            for c in self.m.needed_columns()
            if _norm(c) not in index and _norm(c) not in self.m.optional
        ]
        if missing:
            raise IngestFailed(
                f"{self.path}: has no column {missing[0]!r} (mapping {self.m.label}); "
                f"its header is: {_cut(', '.join(header), 200)}"
            )
        width = len(header)
        post = _Fields(self.m, self.source, lambda c: index.get(_norm(c)), _cell).post
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line, last = last + 1, reader.line_num
                reason = str(exc)
                if "field larger than field limit" in reason:
                    reason = f"a field is longer than {csv.field_size_limit():,} characters"
                for n in range(line, last + 1):
                    broken.pop(n, None)
                yield Refusal(line, f"not readable as CSV: {reason}")
                continue
            line, last = last + 1, reader.line_num
            if not row or not any(row):
                continue
            damaged = [broken.pop(n) for n in range(line, last + 1) if n in broken]
            if damaged:
                yield Refusal(line, f"line {line} {damaged[0]}", "", _cut(",".join(row)))
                continue
            if len(row) != width:
                yield Refusal(
                    line,
                    f"has {len(row)} fields where the header has {width}",
                    "",
                    _cut(",".join(row)),
                )
                continue
            try:
                yield post(row, line)
            except _Bad as bad:
                raw = json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False)
                yield self._refusal(line, bad, raw)

    def _jsonl(self, stream, broken: dict[int, str]) -> Iterator[RawPost | Refusal]:
        post = _Fields(self.m, self.source, lambda c: c, _member).post
        for line, text in enumerate(self._lines(stream, broken), start=1):
            if not text.strip():
                continue
            if line in broken:
                yield Refusal(line, f"line {line} {broken.pop(line)}", "", _cut(text))
                continue
            try:
                record = json.loads(text, parse_constant=_no_constant)
            except (ValueError, RecursionError) as exc:
                yield Refusal(line, f"is not valid JSON ({_why(exc)})", "", _cut(text))
                continue
            if not isinstance(record, dict):
                yield Refusal(line, "is not a JSON object", "", _cut(text))
                continue
            try:
                yield post(record, line)
            except _Bad as bad:
                yield self._refusal(line, bad, text.strip())


def _cell(row: list[str], i: int | None) -> str:
    return row[i] if i is not None else ""


def _member(record: dict, key: str):
    """``key`` in a JSON object; a dotted key reaches into nested objects when the object has
    no such key itself (``user.id``)."""
    if key in record:
        return record[key]
    if "." in key:
        value = record
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value
    wanted = _norm(key)  # as for CSV columns: "Created At" finds created_at
    for name, value in record.items():
        if _norm(name) == wanted:
            return value
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def read_file(
    path: str | Path, m: PostMapping | None = None, *, source: str = ""
) -> Iterator[RawPost | Refusal]:
    """The posts of a file as RawPost | Refusal (IngestFailed when it cannot be read at all)."""
    m = m or mapping(None)
    return iter(PostFile(path, m, source or m.source))


# --------------------------------------------------------------------------- sources


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not SOURCE_NAME.fullmatch(name):
        raise SourceError(
            f"source name {name!r} must be 1-64 letters, digits, '.', '-' or '_' (no spaces)"
        )
    return name


def _check_feed_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise SourceError("a feed needs an http(s) address (--url)")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise SourceError(f"a feed needs an http(s) address, not {url!r}") from None
    if len(url) > Source._meta.get_field("url").max_length:
        raise SourceError("the feed address is longer than 500 characters")
    return url


def add_source(name: str, kind: str, *, url: str = "", actor="cli") -> tuple[Source, str | None]:
    """Register a source; a push source comes with its token, which is shown only now."""
    name = _check_name(name)
    if kind not in Source.Kind.values:
        raise SourceError(f"kind must be one of {', '.join(Source.Kind.values)}, not {kind!r}")
    if kind == Source.Kind.FEED:
        url = _check_feed_url(url)
    elif url:
        raise SourceError("only a feed source has an address (--url)")
    with transaction.atomic():
        if Source.objects.filter(name=name).exists():
            raise SourceError(f"source {name} exists already")
        source = Source.objects.create(name=name, kind=kind, url=url)
        token = source.issue_token() if kind == Source.Kind.PUSH else None
        audit.record(actor, "opinion.source_added", source, detail={"kind": kind, "url": url})
    return source, token


def new_token(name: str, *, actor="cli") -> str:
    """A fresh token for a push source (the old one stops working); shown only now."""
    source = Source.objects.filter(name=name).first()
    if source is None:
        raise SourceError(f"no source is named {name}")
    if source.kind != Source.Kind.PUSH:
        raise SourceError(f"source {name} is a {source.kind} source; only push sources have tokens")
    with transaction.atomic():
        token = source.issue_token()
        audit.record(actor, "opinion.token_issued", source, detail={"prefix": source.token_prefix})
    return token


def file_source(name: str, *, actor="cli") -> Source:
    """The source a file is imported into, created (kind file) the first time."""
    name = _check_name(name)
    source = Source.objects.filter(name=name).first()
    if source is None:
        source, _token = add_source(name, Source.Kind.FILE, actor=actor)
    if not source.is_active:
        raise SourceError(f"source {name} is not active")
    return source


# --------------------------------------------------------------------------- importing a file


def import_file(
    path: str | Path,
    *,
    source: str = "",
    mapping_name: str | Path | None = None,
    progress: bool = False,
    actor="cli",
) -> IngestBatch:
    """Import a file of posts into a source (created if missing); returns the batch.

    Raises IngestFailed when the file or the mapping cannot be used at all (nothing is stored
    then). Running the same file again stores nothing twice."""
    from civicpulse.opinion import posts  # scoring loads its models only when posts come in

    m = mapping(mapping_name)
    name = source or m.source
    if not name:
        raise IngestFailed(f"mapping {m.label} names no source: give --source")
    reader = PostFile(path, m, name)
    items = iter(reader)
    first = next(items, None)  # reads the header: a file that does not fit fails here
    try:
        target = file_source(name, actor=actor)
    except SourceError as exc:
        items.close()
        raise IngestFailed(str(exc)) from None
    with tqdm(
        total=reader.size,
        unit="B",
        unit_scale=True,
        desc=f"posts {reader.path.name}"[:50],
        file=sys.stderr,
        disable=None if progress else True,  # None: only on a terminal
        leave=False,
    ) as bar:
        batch = posts.store(
            target,
            _follow(first, items, reader, bar),
            name=str(reader.path.resolve())[-500:],
        )
    audit.record(
        actor,
        "opinion.import",
        batch,
        detail={
            "file": batch.name,
            "mapping": m.label,
            "encoding": reader.encoding,
            "format": reader.format,
            "read": batch.rows_read,
            "accepted": batch.accepted,
            "duplicates": batch.duplicates,
            "quarantined": batch.quarantined,
        },
    )
    return batch


def _follow(first, items: Iterator, reader: PostFile, bar) -> Iterator[RawPost | Refusal]:
    """The items, with the bar following the bytes read."""
    if first is None:
        return
    yield first
    for count, item in enumerate(items, start=2):
        yield item
        if count % 5000 == 0:
            bar.update(max(0, reader.position() - bar.n))
    bar.update(max(0, reader.size - bar.n))


def summary(batch: IngestBatch, *, shown: int = SHOWN_REASONS) -> str:
    """What an ingest did, one figure a line, with the first quarantine reasons."""
    lines = [
        f"batch {batch.pk} into source {batch.source.name} from {batch.name}",
        f"read             {batch.rows_read:>9,}",
        f"accepted         {batch.accepted:>9,}",
        f"  near copies    {batch.near_duplicates:>9,}  (stored, marked as a copy)",
        f"duplicates       {batch.duplicates:>9,}  (stored before; skipped)",
        f"quarantined      {batch.quarantined:>9,}",
    ]
    for q in batch.quarantine.order_by("line", "id")[:shown]:
        lines.append(f"  line {q.line}, {q.field or 'row'}: {q.reason}")
    if batch.quarantined > shown:
        lines.append(
            f"  ... and {batch.quarantined - shown:,} more (quarantine of batch {batch.pk})"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- feeds


class FeedUnavailable(Exception):
    """A feed could not be fetched; the message says why (one line)."""


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304: nothing new since the ETag / Last-Modified we sent
    body: bytes = b""
    etag: str = ""
    modified: str = ""
    content_type: str = ""
    url: str = ""  # where the body came from, after redirects


class _WebOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only: a feed must not lead the reader to ftp:// or file://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.lower().startswith(("http://", "https://")):
            raise urllib.error.HTTPError(
                newurl, code, f"redirect to a non-web address {newurl!r}", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(
    url: str,
    *,
    etag: str = "",
    modified: str = "",
    timeout: float = FEED_TIMEOUT,
    max_bytes: int = MAX_FEED_BYTES,
) -> Fetched:
    """GET a feed, conditionally; FeedUnavailable when it cannot be had within the limits.

    The time limit covers the whole fetch (a server dripping bytes is cut off too)."""
    if not url.lower().startswith(("http://", "https://")):
        raise FeedUnavailable(f"{url!r} is not an http(s) address")
    headers = {"User-Agent": USER_AGENT, "Accept": FEED_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    opener = urllib.request.build_opener(_WebOnlyRedirects)
    deadline = time.monotonic() + timeout
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as answer:
            declared = answer.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedUnavailable(f"is larger than {max_bytes:,} bytes ({int(declared):,})")
            chunks, size = [], 0
            while chunk := answer.read(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FeedUnavailable(f"is larger than {max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise FeedUnavailable(f"took longer than {timeout:g} s to arrive")
                chunks.append(chunk)
            return Fetched(
                status=answer.status,
                body=b"".join(chunks),
                etag=answer.headers.get("ETag", "") or "",
                modified=answer.headers.get("Last-Modified", "") or "",
                content_type=answer.headers.get("Content-Type", "") or "",
                url=answer.geturl(),
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(status=304, etag=etag, modified=modified, url=url)
        raise FeedUnavailable(f"answered HTTP {exc.code} ({exc.reason})") from None
    except urllib.error.URLError as exc:
        raise FeedUnavailable(f"cannot be reached ({_why(exc.reason)})") from None
    except TimeoutError:
        raise FeedUnavailable(f"did not answer within {timeout:g} s") from None
    except (HTTPException, OSError, ValueError) as exc:
        raise FeedUnavailable(f"gave a broken answer ({type(exc).__name__}: {exc})") from None


class _PlainText(HTMLParser):
    """Text of an HTML fragment: tags dropped, entities decoded, scripts and styles left out
    whole, block ends kept as line breaks."""

    HIDDEN = {"script", "style", "template", "noscript", "iframe", "object", "svg", "math"}
    BREAKS = {
        "br", "p", "div", "li", "tr", "blockquote", "pre", "section", "article",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ul", "ol", "table",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def strip_html(markup: str) -> str:
    """Plain text of an HTML fragment, white space tidied (never markup: nothing a later page
    could render)."""
    parser = _PlainText()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _entry_text(entry) -> str:
    def plain(value: str, detail) -> str:
        kind = (detail or {}).get("type", "text/html")
        return strip_html(value) if "html" in kind else value.strip()

    title = plain(entry.get("title", ""), entry.get("title_detail"))
    body = ""
    if entry.get("summary"):
        body = plain(entry["summary"], entry.get("summary_detail"))
    elif entry.get("content"):
        first = entry["content"][0]
        body = plain(first.get("value", ""), first)
    if body and title and not body.startswith(title):
        return f"{title}\n{body}"
    return body or title


def _entry_time(entry) -> datetime:
    """When the entry was published, else updated (feedparser's times are UTC). Read as a
    plain dict: feedparser's own look-up maps a missing published to updated with a warning."""
    for key in ("published", "updated", "created"):
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed:
            return datetime(*parsed[:6], tzinfo=UTC)
    for key in ("published", "updated", "created"):
        if value := dict.get(entry, key):
            raise _Bad(key, f"{_cut(value, 60)!r} is not a date the feed reader knows")
    raise _Bad("published", "the entry has no published or updated date")


def read_feed(
    body: bytes, *, source: str, name: str, content_type: str = "", base: str = ""
) -> Iterator[RawPost | Refusal]:
    """The entries of an RSS 2.0 or Atom document as RawPost | Refusal.

    A document that is no feed at all gives one Refusal (line 0) naming the feed and the
    parser's reason; an entry without a date or text gives a Refusal for that entry (its line
    is its position in the feed, from 1)."""
    import feedparser  # loaded only by the feed reader

    # bytes in a stream: feedparser would take a short bytes value for a file name to open
    headers = {"content-type": content_type or "application/xml"}
    if base:
        headers["content-location"] = base  # relative entry links are read against it
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    entries = parsed.get("entries") or []
    if not entries:
        problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
        if problem is not None:
            yield Refusal(
                0, f"feed {name} cannot be read: {_why(problem)}", "feed", _cut(_peek(body))
            )
        elif not parsed.get("version"):
            yield Refusal(0, f"feed {name} is not an RSS or Atom feed", "feed", _cut(_peek(body)))
        return
    for line, entry in enumerate(entries, start=1):
        raw = json.dumps(
            {k: dict.get(entry, k, "") for k in ("id", "title", "link", "published", "updated")},
            ensure_ascii=False,
            default=str,
        )
        try:
            text = _entry_text(entry)
            if not text:
                raise _Bad("summary", "the entry has no title or text")
            if len(text) > MAX_TEXT:
                raise _Bad("summary", f"the text is longer than {MAX_TEXT:,} characters")
            created = _entry_time(entry)
        except _Bad as bad:
            yield Refusal(line, f"entry {line}: {bad.reason}", bad.field, _cut(raw))
            continue
        external_id = (entry.get("id") or entry.get("link") or "").strip()
        if not external_id:  # the same entry gives the same id on every poll
            external_id = derived_id(text, created.isoformat())
        elif len(external_id) > 200:
            external_id = derived_id(external_id)
        lon = lat = None
        where = entry.get("where") or {}
        if where.get("type") == "Point":
            try:
                lon, lat = (float(v) for v in where["coordinates"][:2])
            except (TypeError, ValueError, KeyError):
                lon = lat = None
        yield RawPost(
            source=source,
            external_id=external_id,
            text=text,
            created_at=created,
            author=(entry.get("author") or "").strip(),
            url=(entry.get("link") or "").strip(),
            lon=lon,
            lat=lat,
            line=line,
        )


def _peek(body: bytes) -> str:
    return body[:300].decode("utf-8", errors="replace")


def poll_feed(
    source: Source, *, timeout: float = FEED_TIMEOUT, max_bytes: int = MAX_FEED_BYTES
) -> IngestBatch | None:
    """Ask one feed for what is new; None when it answered "not modified".

    A feed that cannot be fetched still leaves a batch, with one quarantined line saying why,
    so an operator sees a broken feed beside the working ones."""
    from civicpulse.opinion import posts

    try:
        got = fetch(
            source.url,
            etag=source.etag,
            modified=source.modified,
            timeout=timeout,
            max_bytes=max_bytes,
        )
    except FeedUnavailable as exc:
        source.last_polled_at = timezone.now()
        source.save(update_fields=["last_polled_at"])
        refusal = Refusal(0, f"feed {source.url} {exc}", "url")
        return posts.store(source, [refusal], name=source.url or source.name)
    if got.status == 304:
        source.last_polled_at = timezone.now()
        source.save(update_fields=["last_polled_at"])
        return None
    items = read_feed(
        got.body,
        source=source.name,
        name=source.url,
        content_type=got.content_type,
        base=got.url or source.url,
    )
    batch = posts.store(source, items, name=source.url)
    # remembered only once the entries are stored: a failed store is fetched again next time
    source.etag = got.etag[: Source._meta.get_field("etag").max_length]
    source.modified = got.modified[: Source._meta.get_field("modified").max_length]
    source.last_polled_at = timezone.now()
    source.save(update_fields=["etag", "modified", "last_polled_at"])
    return batch


def poll_feeds(sources: Iterable[Source] | None = None) -> list[IngestBatch]:
    """Poll every active feed source (the ``opinion.poll_feeds`` job); one failing feed does
    not stop the others. Returns the batches of the feeds that had something to say."""
    return poll_all(sources)[0]


def poll_all(
    sources: Iterable[Source] | None = None,
) -> tuple[list[IngestBatch], list[tuple[Source, str]]]:
    """Poll every active feed source: the batches, and the feeds whose poll failed outright
    (the store refused, a bug) with why; those are logged too. A feed that cannot be fetched
    is not a failure here: its batch holds the reason."""
    if sources is None:
        sources = Source.objects.filter(kind=Source.Kind.FEED, is_active=True).order_by("name")
    batches, failed = [], []
    for source in sources:
        try:
            batch = poll_feed(source)
        except Exception as exc:
            log.exception("polling feed %s (%s) failed", source.name, source.url)
            failed.append((source, f"{type(exc).__name__}: {exc}"))
            continue
        if batch is not None:
            batches.append(batch)
    return batches, failed
