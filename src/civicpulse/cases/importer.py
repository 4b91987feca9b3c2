"""Bulk import of citizen requests from files: 311 exports and message-board dumps become cases.

    civicpulse import cases FILE [--format F | --mapping M.toml] [--on-error reject|keep]

A *mapping* (a TOML file) says how a file's columns become a case: which column is the id at the
source, which hold the dates (and in which formats), the status and how its values map to ours,
templates for the title, description and address, the coordinates and their valid ranges, and
where the service and the department come from. The six built-in formats are the TOML files in
``cases/mappings/`` (nyc, la2017, la2020, chicago, boston, tipdm); ``--format`` picks one, and with
neither ``--format`` nor ``--mapping`` the format is guessed from the header.

A mapping file (all keys but ``source``, ``[id] column``, ``[dates] created`` and
``[dates] formats`` are optional; see ``cases/mappings/*.toml`` for six complete ones)::

    name = "Hotline export"        source = "hotline"   (ImportBatch.source, Case.source)
    encoding = "utf-8"             or a list tried in order, e.g. ["utf-8", "gb18030"]
    delimiter = ","                timezone = "Asia/Shanghai" (default: the platform's)
    area = "locate"                "locate": the finest of our areas holding the point, when it
                                   is inside our city, else the city; "city": always the city
    detect = [...]                 columns that identify the layout when guessing
    optional_columns = [...]       columns a file of this layout may lack
    [id]        column
    [dates]     created, closed, due (columns); formats = strptime formats or "iso", tried in
                order; placeholders = ["1900-01-01"] (dates that mean "missing")
    [status]    column; [status.values] source value = one of our statuses; default = status
                for values not listed (else such a row is quarantined). Without a status, a
                case with a closing date is closed, else new.
    [text]      title, description, address: templates of {Column} fields; a [segment] is
                left out when a field in it is empty: "{Complaint Type}[: {Descriptor}]"
    [location]  lat, lon (columns); lat_range, lon_range = [low, high]
    [service]   column; create_services = true (one Service per distinct value: code = slug
                + short hash, group "imported:<source>"); sla_working_days; fallback = {code,
                name_zh, name_en} for rows without a (mapped) value
    [services]  source value = one of our service codes
    [department] column (+ name_column, prefix, [department.names]) or a fixed code (+ name_en,
                name_zh); created when missing
    [limits]    description = 5000 (characters)

Rules the importer keeps:

- Column names are matched ignoring case, spaces and punctuation (``Unique Key`` = ``unique_key``).
- Source datetimes are local to the source's city: a naive stamp is read in the mapping's
  ``timezone`` (e.g. America/New_York) and stored as that instant. Placeholder dates (1900-01-01)
  mean "missing", not an error.
- Every row is checked; a bad row goes to the quarantine (``QuarantinedRow``) with its line in the
  file (the physical line the record starts on; the header is line 1), the column at fault and the
  reason. ``on_error="reject"``: one bad row and nothing of the batch is imported (the quarantine
  is still recorded); ``on_error="keep"``: the good rows are imported.
- An import is one transaction. A row whose (source, id) is already in the store is skipped, so
  running the same file again imports nothing twice.
- A file the importer cannot read at all (not CSV text, wrong encoding, a layout no format fits,
  a damaged gzip) raises ``ImportFailed`` with one line naming the file and where; nothing is
  stored then.

- A case gets channel "import", its source and id at the source, a tracking number
  ``IM<batch>-<line>``; resolved_at = closed_at = the closing date when its status is closed;
  due_at = the file's due date, else the service's working days from its creation on the
  platform's calendar (``sla.calendar()``).

Speed: the file is streamed (gzip too) through the ``csv`` module, each row is turned into the
column values of a case once (dates, deadlines and places are cached), and rows go to the store
2,000 at a time inside the one transaction, with one query per batch for the ids already
imported: SQLite takes them by the driver's ``executemany``, PostgreSQL by ``COPY`` (through
Django's client-side-binding cursor, ``executemany`` ran at a third of the driver's own speed).
Django's ``bulk_create`` is not used for the cases: on SQLite it splits a batch into 26-row
statements (999 parameters) and builds a model instance per row, which made an import ~7x slower
than the driver; the column list and the defaults of the columns the importer does not set still
come from the ``Case`` model. See benchmarks/case_import.py.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import math
import re
import sys
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import NOT_PROVIDED
from django.utils import timezone
from tqdm import tqdm

from civicpulse.cases import sla, workflow
from civicpulse.cases.models import Case, ImportBatch, QuarantinedRow, Service
from civicpulse.core import audit, files
from civicpulse.core.models import Area, Department

MAPPINGS_DIR = Path(__file__).with_name("mappings")
BATCH_ROWS = 2000
SNIFF_BYTES = 64 * 1024
DESCRIPTION_LIMIT = 5000  # the one window's limit (workflow.take_in)
TITLE_LIMIT = Case._meta.get_field("title").max_length
ADDRESS_LIMIT = Case._meta.get_field("address").max_length
ID_LIMIT = Case._meta.get_field("external_id").max_length
SOURCE_LIMIT = Case._meta.get_field("source").max_length
CODE_LIMIT = Service._meta.get_field("code").max_length
SHOWN_REASONS = 5
STATUSES = tuple(Case.Status.values)


class ImportFailed(Exception):
    """The file cannot be imported at all; the message is one line naming the file and where."""


class _Bad(Exception):
    """One row refused: the column at fault and why."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


class _Rejected(Exception):
    """Raised inside the import's transaction to undo it (on_error="reject" with bad rows)."""


# --------------------------------------------------------------------------- mapping files


def _norm(name: str) -> str:
    """A column name as matched: case, spaces and punctuation ignored."""
    return re.sub(r"[\W_]+", "_", name.casefold()).strip("_")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def _short_hash(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()[:8]


# A template: literal text, {Column} fields, and [optional segments] left out when a field in them
# is empty. Parts: (0, text) | (1, column) | (2, [(0, text) | (1, column), ...]).
Template = list


def _parse_template(text: str, where: str) -> Template:
    parts: Template = []
    group: list | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        target = group if group is not None else parts
        if ch in "{}[]" and text[i : i + 2] in ("{{", "}}", "[[", "]]"):
            target.append((0, ch))
            i += 2
        elif ch == "{":
            end = text.find("}", i)
            if end < 0 or not text[i + 1 : end].strip():
                raise ImportFailed(f"{where}: a {{ without its column name and }}")
            target.append((1, text[i + 1 : end].strip()))
            i = end + 1
        elif ch == "[":
            if group is not None:
                raise ImportFailed(f"{where}: optional segments [...] do not nest")
            group = []
            i += 1
        elif ch == "]":
            if group is None:
                raise ImportFailed(f"{where}: a ] without its [")
            parts.append((2, group))
            group = None
            i += 1
        elif ch == "}":
            raise ImportFailed(f"{where}: a }} without its {{")
        else:
            j = i
            while j < len(text) and text[j] not in "{}[]":
                j += 1
            target.append((0, text[i:j]))
            i = j
    if group is not None:
        raise ImportFailed(f"{where}: a [ without its ]")
    return parts


def _template_columns(template: Template) -> list[str]:
    found = []
    for kind, value in template:
        if kind == 1:
            found.append(value)
        elif kind == 2:
            found += [v for k, v in value if k == 1]
    return found


@dataclass(frozen=True)
class CaseMapping:
    """A mapping file, checked."""

    label: str  # the format's name or the mapping file's path
    name: str
    source: str
    encodings: tuple[str, ...]
    delimiter: str
    tz: ZoneInfo
    area: str  # "city" | "locate"
    detect: tuple[str, ...]
    optional: frozenset[str]  # normalised column names a file may lack
    id_column: str
    created: str
    closed: str | None
    due: str | None
    date_formats: tuple[str, ...]
    placeholders: frozenset[date]
    status_column: str | None
    status_values: dict[str, str]  # casefolded source value -> our status
    status_default: str | None
    title: Template | None
    description: Template | None
    address: Template | None
    lat: str | None
    lon: str | None
    lat_range: tuple[float, float]
    lon_range: tuple[float, float]
    service_column: str | None
    services: dict[str, str]  # casefolded source value -> our service code
    create_services: bool
    sla_working_days: int
    fallback: dict | None  # {"code", "name_zh", "name_en"}
    department_column: str | None
    department_name_column: str | None
    department_prefix: str
    department_code: str | None
    department_name_en: str
    department_name_zh: str
    department_names: dict[str, str]
    description_limit: int

    def required_columns(self) -> list[str]:
        columns = [self.id_column, self.created, self.closed, self.due, self.status_column]
        columns += [self.lat, self.lon, self.service_column]
        columns += [self.department_column, self.department_name_column]
        for template in (self.title, self.description, self.address):
            columns += _template_columns(template or [])
        seen, out = set(), []
        for c in columns:
            if c and _norm(c) not in self.optional and _norm(c) not in seen:
                seen.add(_norm(c))
                out.append(c)
        return out


_KEYS = {
    "": {
        "name",
        "source",
        "encoding",
        "delimiter",
        "timezone",
        "area",
        "detect",
        "optional_columns",
        "id",
        "dates",
        "status",
        "text",
        "location",
        "service",
        "services",
        "department",
        "limits",
    },
    "id": {"column"},
    "dates": {"created", "closed", "due", "formats", "placeholders"},
    "status": {"column", "values", "default"},
    "text": {"title", "description", "address"},
    "location": {"lat", "lon", "lat_range", "lon_range"},
    "service": {"column", "create_services", "sla_working_days", "fallback"},
    "department": {"column", "name_column", "prefix", "code", "name_en", "name_zh", "names"},
    "limits": {"description"},
}


class _Reader:
    """Typed look-ups in a parsed TOML document, failing with the file and key."""

    def __init__(self, doc: dict, where: str):
        self.doc, self.where = doc, where

    def fail(self, key: str, message: str) -> ImportFailed:
        return ImportFailed(f"mapping {self.where}: {key} {message}")

    def table(self, key: str) -> dict:
        value = self.doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table ([section])")
        unknown = sorted(set(value) - _KEYS[key]) if key in _KEYS else []
        if unknown:
            raise self.fail(
                f"[{key}] {unknown[0]}",
                f"is not a known key (known: {', '.join(sorted(_KEYS[key]))})",
            )
        return value

    def text(self, table: dict, key: str, label: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(label, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(label, "must be a non-empty string")
        return value.strip()

    def strings(self, table: dict, key: str, label: str) -> list[str]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(label, "must be a list of strings")
        return value

    def pairs(self, table: dict, key: str, label: str) -> dict[str, str]:
        value = table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(label, "must be a table of strings")
        return value

    def span(self, table: dict, key: str, label: str, default: tuple[float, float]):
        value = table.get(key)
        if value is None:
            return default
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and value[0] < value[1]
        )
        if not ok:
            raise self.fail(label, "must be [low, high] with low < high")
        return float(value[0]), float(value[1])


def load_mapping(source: str | Path, *, label: str | None = None) -> CaseMapping:
    """Read and check a mapping file; any fault is an ImportFailed naming the file and key."""
    path = Path(source)
    where = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ImportFailed(f"mapping {where}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"mapping {where}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImportFailed(f"mapping {where}: is not valid TOML ({exc})") from None
    r = _Reader(doc, where)
    unknown = sorted(set(doc) - _KEYS[""])
    if unknown:
        raise r.fail(unknown[0], f"is not a known key (known: {', '.join(sorted(_KEYS['']))})")

    source_name = r.text(doc, "source", "source", required=True)
    if len(source_name) > SOURCE_LIMIT:
        raise r.fail("source", f"must be at most {SOURCE_LIMIT} characters")
    encodings = r.strings(doc, "encoding", "encoding") or ["utf-8"]
    for enc in encodings:
        try:
            codecs.lookup(enc)
        except LookupError:
            raise r.fail("encoding", f"{enc!r} is not an encoding Python knows") from None
    delimiter = doc.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise r.fail("delimiter", "must be one character")
    tz_name = r.text(doc, "timezone", "timezone") or settings.TIME_ZONE
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.fail("timezone", f"{tz_name!r} is not a known time zone") from None
    area = doc.get("area", "locate")
    if area not in ("city", "locate"):
        raise r.fail("area", 'must be "city" or "locate"')

    id_table, dates, status = r.table("id"), r.table("dates"), r.table("status")
    text, location, service = r.table("text"), r.table("location"), r.table("service")
    department, limits = r.table("department"), r.table("limits")

    formats = r.strings(dates, "formats", "[dates] formats")
    if not formats:
        raise r.fail("[dates] formats", 'is required (strptime formats, or "iso")')
    placeholders = set()
    for value in r.strings(dates, "placeholders", "[dates] placeholders") or ["1900-01-01"]:
        try:
            placeholders.add(date.fromisoformat(value))
        except ValueError:
            raise r.fail("[dates] placeholders", f"{value!r} is not a YYYY-MM-DD date") from None

    values = r.pairs(status, "values", "[status.values]")
    status_default = r.text(status, "default", "[status] default")
    for key, value in [*values.items(), ("default", status_default)]:
        if value is not None and value not in STATUSES:
            raise r.fail(
                f"[status.values] {key!r}" if key != "default" else "[status] default",
                f"= {value!r} is not one of {', '.join(STATUSES)}",
            )

    templates = {}
    for key in ("title", "description", "address"):
        raw = r.text(text, key, f"[text] {key}")
        templates[key] = _parse_template(raw, f"mapping {where}: [text] {key}") if raw else None
    if templates["title"] is None and templates["description"] is None:
        raise r.fail("[text]", "needs a title or a description template")

    lat = r.text(location, "lat", "[location] lat")
    lon = r.text(location, "lon", "[location] lon")
    if (lat is None) != (lon is None):
        raise r.fail("[location]", "needs both lat and lon, or neither")

    services = r.pairs(doc, "services", "[services]")
    fallback = service.get("fallback")
    if fallback is not None:
        if isinstance(fallback, str):
            fallback = {"code": fallback}
        if not isinstance(fallback, dict) or not isinstance(fallback.get("code"), str):
            raise r.fail(
                "[service] fallback", 'must be a code or { code = "...", name_zh, name_en }'
            )
        fallback = {
            "code": fallback["code"],
            "name_zh": str(fallback.get("name_zh") or fallback["code"]),
            "name_en": str(fallback.get("name_en") or fallback["code"]),
        }
    create = service.get("create_services", False)
    if not isinstance(create, bool):
        raise r.fail("[service] create_services", "must be true or false")
    sla_days = service.get("sla_working_days", 5)
    if not isinstance(sla_days, int) or isinstance(sla_days, bool) or not 0 <= sla_days <= 365:
        raise r.fail("[service] sla_working_days", "must be a whole number of days (0-365)")
    service_column = r.text(service, "column", "[service] column")
    if service_column is None and fallback is None:
        raise r.fail("[service]", "needs a column, or a fallback service for every row")
    if service_column is not None and not (services or create or fallback):
        raise r.fail(
            "[service]",
            "needs a [services] table, create_services = true, or a fallback "
            "(how a column value becomes one of our services)",
        )
    department_column = r.text(department, "column", "[department] column")
    department_code = r.text(department, "code", "[department] code")
    if create and not (department_column or department_code):
        raise r.fail("[department]", "needs a column or a code: new services need their department")
    description_limit = limits.get("description", DESCRIPTION_LIMIT)
    if not isinstance(description_limit, int) or description_limit < 1:
        raise r.fail("[limits] description", "must be a positive whole number")

    id_column = r.text(id_table, "column", "[id] column", required=True)
    created = r.text(dates, "created", "[dates] created", required=True)
    return CaseMapping(
        label=label or where,
        name=r.text(doc, "name", "name") or path.stem,
        source=source_name,
        encodings=tuple(encodings),
        delimiter=delimiter,
        tz=tz,
        area=area,
        detect=tuple(r.strings(doc, "detect", "detect")),
        optional=frozenset(
            _norm(c) for c in r.strings(doc, "optional_columns", "optional_columns")
        ),
        id_column=id_column,
        created=created,
        closed=r.text(dates, "closed", "[dates] closed"),
        due=r.text(dates, "due", "[dates] due"),
        date_formats=tuple(formats),
        placeholders=frozenset(placeholders),
        status_column=r.text(status, "column", "[status] column"),
        status_values={k.strip().casefold(): v for k, v in values.items()},
        status_default=status_default,
        title=templates["title"],
        description=templates["description"],
        address=templates["address"],
        lat=lat,
        lon=lon,
        lat_range=r.span(location, "lat_range", "[location] lat_range", (-90.0, 90.0)),
        lon_range=r.span(location, "lon_range", "[location] lon_range", (-180.0, 180.0)),
        service_column=service_column,
        services={k.strip().casefold(): v for k, v in services.items()},
        create_services=create,
        sla_working_days=sla_days,
        fallback=fallback,
        department_column=department_column,
        department_name_column=r.text(department, "name_column", "[department] name_column"),
        department_prefix=department.get("prefix", "") or "",
        department_code=department_code,
        department_name_en=r.text(department, "name_en", "[department] name_en")
        or department_code
        or "",
        department_name_zh=r.text(department, "name_zh", "[department] name_zh")
        or r.text(department, "name_en", "[department] name_en")
        or department_code
        or "",
        department_names=r.pairs(department, "names", "[department.names]"),
        description_limit=description_limit,
    )


def formats() -> dict[str, Path]:
    """The built-in formats: name -> mapping file."""
    return {p.stem: p for p in sorted(MAPPINGS_DIR.glob("*.toml"))}


def builtin(name: str) -> CaseMapping:
    known = formats()
    if name not in known:
        raise ImportFailed(f"unknown format {name!r}; the built-in formats are {', '.join(known)}")
    return load_mapping(known[name], label=name)


# --------------------------------------------------------------------------- reading the file


class _Input:
    """A CSV file, plain or gzip, streamed as text in the first of the mapping's encodings that
    reads it; rows come with the physical line they start on."""

    def __init__(self, path: Path, encodings: tuple[str, ...], delimiter: str):
        self.path, self.delimiter = path, delimiter
        try:
            self.size = path.stat().st_size
            head = files.read_head(path, SNIFF_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ImportFailed(f"{path}: the file is damaged ({_why(exc)})") from None
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot be read ({_why(exc)})") from None
        problem = files.text_problem(head, what="CSV text")
        if problem:
            raise ImportFailed(f"{path}: {problem}")
        try:
            self.encoding = files.choose_encoding(head, encodings)
        except files.EncodingMismatch as exc:
            raise ImportFailed(
                f"{path}: {exc}; name the file's encoding in a mapping (encoding = ...)"
            ) from None
        self._raw = self._stream = self.text = None

    def open(self) -> list[str]:
        """Open for reading; returns the header."""
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._stream = files.decompressed(self._raw)
        self.text = io.TextIOWrapper(self._stream, encoding=self.encoding, newline="")
        self.reader = csv.reader(self.text, delimiter=self.delimiter)
        for _line, row in self.rows():
            return row
        raise ImportFailed(f"{self.path}: has no header line")

    def position(self) -> int:
        """Bytes of the file read so far (compressed bytes for gzip)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        reader = self.reader
        last = reader.line_num
        try:
            for row in reader:
                line, last = last + 1, reader.line_num
                if row and any(row):
                    yield line, row
        except UnicodeDecodeError as exc:
            line = files.undecodable_line(self.path, self.encoding)
            raise ImportFailed(
                f"{self.path}: line {line or last + 1} is not {self.encoding} text "
                f"({exc.reason}); name the file's encoding in a mapping (encoding = ...)"
            ) from None
        except csv.Error as exc:
            raise ImportFailed(
                f"{self.path}: line {reader.line_num}: not readable as CSV ({exc})"
            ) from None
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise ImportFailed(
                f"{self.path}: the file is damaged after line {last} ({_why(exc)})"
            ) from None

    def close(self) -> None:
        for handle in (self.text, self._stream, self._raw):
            if handle is not None:
                try:
                    handle.close()
                except (OSError, ValueError):
                    pass


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _header(path: Path, encodings: tuple[str, ...], delimiter: str) -> list[str]:
    source = _Input(path, encodings, delimiter)
    try:
        return source.open()
    finally:
        source.close()


def guess(path: Path) -> str:
    """The built-in format whose columns the file's header has; ImportFailed if none fits."""
    mappings = {name: builtin(name) for name in formats()}
    encodings = tuple(dict.fromkeys(e for m in mappings.values() for e in m.encodings))
    headers: dict[str, set[str]] = {}
    fits = []
    for name, m in mappings.items():
        if m.delimiter not in headers:
            headers[m.delimiter] = {_norm(c) for c in _header(path, encodings, m.delimiter)}
        have = headers[m.delimiter]
        needed = [_norm(c) for c in (m.detect or m.required_columns())]
        if all(c in have for c in needed):
            referenced = {_norm(c) for c in m.required_columns()} | m.optional
            fits.append((len(needed), len(referenced & have), name))
    if not fits:
        some = ", ".join(sorted(headers.get(",", set()))[:6])
        raise ImportFailed(
            f"{path}: the header fits none of the built-in formats ({', '.join(mappings)}); "
            f"give --format or --mapping (header starts: {some})"
        )
    return max(fits)[2]


# --------------------------------------------------------------------------- one row to a case


@dataclass
class _Dates:
    """A date column: strings -> (aware datetime, database value), cached per distinct string."""

    formats: tuple[str, ...]
    tz: ZoneInfo
    placeholders: frozenset[date]
    adapt: Callable
    cache: dict = field(default_factory=dict)

    def parse(self, text: str):
        """None for empty and placeholder values; ValueError for what no format reads."""
        hit = self.cache.get(text, self)
        if hit is not self:
            return hit
        value = text.strip()
        result = None
        if value:
            for fmt in self.formats:  # in the mapping's order: the first that reads it
                try:
                    moment = (
                        datetime.fromisoformat(value)
                        if fmt == "iso"
                        else datetime.strptime(value, fmt)
                    )
                except ValueError:
                    continue
                break
            else:
                raise ValueError(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.tz)
            if moment.date() not in self.placeholders:
                result = (moment, self.adapt(moment))
        if len(self.cache) > 200_000:
            self.cache.clear()
        self.cache[text] = result
        return result


class _Catalog:
    """Our services and departments, loaded once; the ones a file needs and we lack are
    created (in the import's transaction) the first time they are met."""

    def __init__(self, mapping: CaseMapping):
        self.m = mapping
        self.services = {
            code: (pk, dept, days)
            for code, pk, dept, days in Service.objects.values_list(
                "code", "id", "department_id", "sla_working_days"
            )
        }
        self.departments = dict(Department.objects.values_list("code", "id"))
        missing = sorted({c for c in mapping.services.values() if c not in self.services})
        if missing:
            raise ImportFailed(
                f"mapping {mapping.label}: [services] names service code {missing[0]!r}, "
                "which is not in the service catalog"
            )
        self.by_value: dict[str, tuple[int, int, int]] = {}
        self.by_department: dict[str, int] = {}
        self.services_created = self.departments_created = 0

    def _department(self, code: str, name_zh: str, name_en: str) -> int:
        pk = self.departments.get(code)
        if pk is None:
            pk = Department.objects.create(
                code=code, name_zh=name_zh[:120], name_en=name_en[:160]
            ).pk
            self.departments[code] = pk
            self.departments_created += 1
        return pk

    def fixed_department(self) -> int | None:
        m = self.m
        if not m.department_code:
            return None
        return self._department(m.department_code, m.department_name_zh, m.department_name_en)

    def department(self, value: str, name: str) -> int:
        """The department a row names (by its code or name in the file)."""
        pk = self.by_department.get(value)
        if pk is None:
            m = self.m
            slug = _slug(m.department_prefix + value)
            code = slug if 0 < len(slug) <= CODE_LIMIT else ""
            if not code:
                stem = slug[: CODE_LIMIT - 9] or _slug(m.source)[:8] or "dept"
                code = f"{stem}-{_short_hash(m.source, value)}"
            title = m.department_names.get(value) or name or value
            pk = self._department(code, title, title)
            self.by_department[value] = pk
        return pk

    def _create_service(self, code, name_zh, name_en, department_id) -> tuple[int, int, int]:
        service = Service.objects.create(
            code=code,
            name_zh=name_zh[:120],
            name_en=name_en[:160],
            group=f"imported:{self.m.source}"[:64],
            department_id=department_id,
            sla_working_days=self.m.sla_working_days,
        )
        self.services_created += 1
        self.services[code] = (service.pk, department_id, service.sla_working_days)
        return self.services[code]

    def service(self, value: str, department_id: int | None, label: str):
        """(service id, its department id, its deadline in working days) for a row."""
        hit = self.by_value.get(value)
        if hit is not None:
            return hit
        m = self.m
        folded = value.casefold()
        if value and folded in m.services:
            hit = self.services[m.services[folded]]
        elif value and m.create_services:
            code = f"{_slug(value)[: CODE_LIMIT - 9] or _slug(m.source)[:8] or 'svc'}-"
            code += _short_hash(m.source, value)
            hit = self.services.get(code)
            if hit is None:
                department_id = department_id or self.fixed_department()
                if department_id is None:
                    raise _Bad(
                        label, f"{value!r} needs a new service but the row has no department"
                    )
                hit = self._create_service(code, value, value, department_id)
        elif m.fallback is not None:
            f = m.fallback
            hit = self.services.get(f["code"])
            if hit is None:
                department_id = department_id or self.fixed_department()
                if department_id is None:
                    raise _Bad(label, f"the fallback service {f['code']!r} has no department")
                hit = self._create_service(f["code"], f["name_zh"], f["name_en"], department_id)
        elif not value:
            raise _Bad(label, "is empty: no service for the row")
        else:
            raise _Bad(
                label,
                f"{value!r} is not one of our services: map it in [services] "
                "or set create_services = true",
            )
        self.by_value[value] = hit
        return hit


class _Places:
    """Which of our areas a point is in: the finest area holding it when it is inside our city,
    else the city itself; lookups are cached and points outside the city's box are not looked
    up at all."""

    def __init__(self, mode: str):
        city = Area.objects.filter(level=Area.Level.CITY).order_by("code").first()
        if city is None:
            raise ImportFailed(
                "the store has no city area to put cases in: build the demo city "
                "(civicpulse demo) or import the area tree (civicpulse import areas FILE) first"
            )
        self.city = city.pk
        self.mode = mode
        self.box = self._box(city) if mode == "locate" else None
        self.cache: dict[tuple[float, float], int] = {}
        self.lookups = 0

    @staticmethod
    def _box(city: Area):
        polygons = [city.polygon] if city.polygon else []
        if not polygons:
            polygons = list(
                Area.objects.filter(level=Area.Level.DISTRICT).values_list("polygon", flat=True)
            )
        points = []
        for poly in polygons:
            if not poly:
                continue
            if poly.get("type") == "Polygon":
                rings = poly["coordinates"]
            elif poly.get("type") == "MultiPolygon":
                rings = [ring for p in poly["coordinates"] for ring in p]
            else:
                continue
            points += [pt for ring in rings for pt in ring]
        if not points:
            return None
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        return min(lons), min(lats), max(lons), max(lats)

    def area(self, lon: float | None, lat: float | None) -> int:
        box = self.box
        if lon is None or box is None or not (box[0] <= lon <= box[2] and box[1] <= lat <= box[3]):
            return self.city
        key = (lon, lat)
        pk = self.cache.get(key)
        if pk is None:
            self.lookups += 1
            found = workflow.locate(lon, lat)
            pk = found.pk if found is not None else self.city
            if len(self.cache) > 100_000:
                self.cache.clear()
            self.cache[key] = pk
        return pk


def _psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


class _Writer:
    """Inserts cases with the driver: ``executemany`` (SQLite), ``COPY`` (PostgreSQL). The
    importer fills the columns in ``SET``; every other column of the Case model gets its model
    default (computed once, or per row for a unique column such as the public token)."""

    SET = (
        "tracking_no",
        "channel",
        "service",
        "department",
        "area",
        "title",
        "description",
        "address",
        "lon",
        "lat",
        "status",
        "created_at",
        "due_at",
        "resolved_at",
        "closed_at",
        "source",
        "external_id",
    )

    def __init__(self):
        fields = [f for f in Case._meta.concrete_fields if not f.primary_key]
        by_name = {f.name: f for f in fields}
        columns = [by_name[name].column for name in self.SET]
        self.constant: list = []
        self.per_row: list = []
        for f in fields:
            if f.name in self.SET:
                continue
            if not f.has_default() and f.db_default is not NOT_PROVIDED:
                continue  # the database fills it
            if f.has_default() and callable(f.default) and f.unique:
                self.per_row.append(f)  # e.g. the public token: a fresh value per case
                continue
            value = f.get_default()  # as bulk_create would: the default, or "" / None
            if value is None and not f.null:
                raise RuntimeError(f"Case.{f.name} has no default: the importer cannot fill it")
            self.constant.append(f.get_db_prep_save(value, connection))
            columns.append(f.column)
        columns += [f.column for f in self.per_row]
        self.columns = columns
        self.makers = [
            f.default
            if f.get_internal_type() in ("CharField", "TextField")
            else (lambda f=f: f.get_db_prep_save(f.get_default(), connection))
            for f in self.per_row
        ]
        self.constant = tuple(self.constant)
        quote = connection.ops.quote_name
        self.sql = "INSERT INTO {} ({}) VALUES ({})".format(
            quote(Case._meta.db_table),
            ", ".join(quote(c) for c in columns),
            ", ".join(["%s"] * len(columns)),
        )
        self.copy_sql = "COPY {} ({}) FROM STDIN".format(
            quote(Case._meta.db_table), ", ".join(quote(c) for c in columns)
        )

    def _fresh(self) -> tuple:
        """The per-row defaults (a text column's default needs no conversion)."""
        return tuple(make() for make in self.makers)

    def params(self, rows: list[tuple]) -> list[tuple]:
        """The rows the importer made, completed with the other columns' defaults."""
        constant = self.constant
        if len(self.makers) == 1:  # the usual case: the token
            make = self.makers[0]
            return [(*r, *constant, make()) for r in rows]
        if self.makers:
            fresh = self._fresh
            return [r + constant + fresh() for r in rows]
        return [r + constant for r in rows]

    def execute(self, params: list[tuple]) -> None:
        if connection.vendor == "postgresql" and _psycopg3():
            # COPY, on the connection (and in the transaction) Django holds: through Django's
            # client-side-binding cursor, executemany ran at a third of the driver's own speed.
            import psycopg

            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
                with cursor.copy(self.copy_sql) as copy:
                    for row in params:
                        copy.write_row(row)
            return
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, params)

    def insert(self, rows: list[tuple]) -> None:
        if rows:
            self.execute(self.params(rows))


@dataclass
class _Quarantined:
    line: int
    field: str
    reason: str
    raw: dict


class _Run:
    """One pass over a file: each row checked and turned into a case's column values."""

    def __init__(self, mapping: CaseMapping, header: list[str], path: Path, on_error: str):
        self.m, self.path, self.header, self.on_error = mapping, path, header, on_error
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(_norm(name), i)
        self.index = index
        missing = [c for c in mapping.required_columns() if _norm(c) not in index]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise ImportFailed(
                f"{path}: line 1: the header lacks column(s) {names} that the "
                f"{mapping.label} format needs"
            )
        m = mapping
        adapt = connection.ops.adapt_datetimefield_value
        self.dates = {
            key: _Dates(m.date_formats, m.tz, m.placeholders, adapt)
            for key in ("created", "closed", "due")
        }
        self.id_col, self.created_col = self._col(m.id_column), self._col(m.created)
        self.closed_col, self.due_col = self._col(m.closed), self._col(m.due)
        self.status_col = self._col(m.status_column)
        self.lat_col, self.lon_col = self._col(m.lat), self._col(m.lon)
        self.service_col = self._col(m.service_column)
        self.dept_col = self._col(m.department_column)
        self.dept_name_col = self._col(m.department_name_column)
        self.title = self._render(m.title)
        self.description = self._render(m.description)
        self.same_text = m.title == m.description  # render once
        self.address = self._render(m.address)
        self.title_label = self._label(m.title, "title")
        self.description_label = self._label(m.description, "description")
        self.address_label = self._label(m.address, "address")
        self.catalog = _Catalog(mapping)
        self.places = _Places(mapping.area)
        self.locating = self.places.box is not None
        self.calendar = sla.calendar()
        self.due_cache: dict = {}
        self.seen: dict[str, int] = {}
        self.quarantine: list[_Quarantined] = []
        self.read = self.imported = self.skipped = 0

    def _col(self, name: str | None) -> int:
        """The column's index in the file, or -1 when the mapping or the file lacks it."""
        return self.index.get(_norm(name), -1) if name else -1

    def _label(self, template: Template | None, default: str) -> str:
        """The column to name when a rendered text is at fault: the template's one column, or
        the case's field when the template joins several."""
        columns = {self._col(c) for c in _template_columns(template or [])} - {-1}
        return self.header[columns.pop()] if len(columns) == 1 else default

    def _render(self, template: Template | None) -> Callable[[list[str]], str]:
        if not template:
            return lambda row: ""
        if len(template) == 1 and template[0][0] == 1:  # the common "{Column}"
            i = self._col(template[0][1])
            return (lambda row: row[i].strip()) if i >= 0 else (lambda row: "")
        parts = []
        for kind, value in template:
            if kind == 2:
                value = [(k, self._col(v) if k == 1 else v) for k, v in value]
            elif kind == 1:
                value = self._col(value)
            parts.append((kind, value))

        def render(row: list[str]) -> str:
            out = []
            for kind, value in parts:
                if kind == 0:
                    out.append(value)
                elif kind == 1:
                    if value >= 0:
                        out.append(row[value].strip())
                else:
                    pieces = []
                    for k, v in value:
                        if k == 0:
                            pieces.append(v)
                            continue
                        text = row[v].strip() if v >= 0 else ""
                        if not text:
                            break
                        pieces.append(text)
                    else:
                        out.append("".join(pieces))
            return "".join(out).strip()

        return render

    def _date(self, key: str, col: int, row: list[str]):
        """A date cell read by the mapping's formats: (aware datetime, database value), None
        when the cell is empty or a placeholder (or the column absent), else _Bad."""
        if col < 0:
            return None
        dates = self.dates[key]
        text = row[col]
        hit = dates.cache.get(text, dates)  # most stamps repeat: skip the call below
        if hit is not dates:
            return hit
        try:
            return dates.parse(text)
        except ValueError:
            raise _Bad(
                self.header[col],
                f"{text.strip()!r} is not a date in any of the formats "
                f"{' | '.join(self.m.date_formats)}",
            ) from None

    def _point(self, row: list[str]) -> tuple[float | None, float | None]:
        """(lon, lat) of a row, (None, None) when it gives no place, else _Bad."""
        lat_col, lon_col = self.lat_col, self.lon_col
        lat_text = row[lat_col].strip() if lat_col >= 0 else ""
        lon_text = row[lon_col].strip() if lon_col >= 0 else ""
        if not lat_text and not lon_text:
            return None, None
        try:
            lat, lon = float(lat_text), float(lon_text)
        except ValueError:
            lat = lon = math.nan
        (lat_low, lat_high), (lon_low, lon_high) = self.m.lat_range, self.m.lon_range
        if lat_low <= lat <= lat_high and lon_low <= lon <= lon_high and (lat or lon):
            return lon, lat  # the usual case; what follows only says what is wrong
        lat_name = self.header[lat_col] if lat_col >= 0 else self.m.lat
        lon_name = self.header[lon_col] if lon_col >= 0 else self.m.lon
        if not lat_text:
            raise _Bad(lat_name, f"is empty while {lon_name} is {lon_text!r}")
        if not lon_text:
            raise _Bad(lon_name, f"is empty while {lat_name} is {lat_text!r}")
        checked = []
        for name, text, low, high in (
            (lat_name, lat_text, lat_low, lat_high),
            (lon_name, lon_text, lon_low, lon_high),
        ):
            try:
                number = float(text)
            except ValueError:
                raise _Bad(name, f"{text!r} is not a number") from None
            if not math.isfinite(number):
                raise _Bad(name, f"{text!r} is not a finite number")
            checked.append((name, number, low, high))
        if checked[0][1] == 0 and checked[1][1] == 0:
            raise _Bad(lat_name, "0, 0 is not a place (a missing location written as zeros)")
        for name, number, low, high in checked:
            if not low <= number <= high:
                raise _Bad(name, f"{number:g} is outside the valid range {low:g}..{high:g}")
        raise AssertionError("unreachable: a point outside its ranges was not refused")

    def case(self, line: int, row: list[str], tracking_prefix: str) -> tuple:
        """The column values of the case a row makes (in _Writer.SET order), or _Bad."""
        header, m = self.header, self.m
        if len(row) != len(header):
            raise _Bad("", f"has {len(row)} fields where the header has {len(header)}")
        external_id = row[self.id_col].strip()
        if not external_id or len(external_id) > ID_LIMIT:
            raise _Bad(
                header[self.id_col],
                f"is {len(external_id)} characters long; an id has at most {ID_LIMIT}"
                if external_id
                else "is empty: every row needs its id at the source",
            )
        first = self.seen.setdefault(external_id, line)
        if first != line:
            raise _Bad(
                header[self.id_col], f"duplicate id {external_id!r}: already on line {first}"
            )

        created = self._date("created", self.created_col, row)
        if created is None:
            text = row[self.created_col].strip()
            raise _Bad(
                header[self.created_col],
                f"holds the placeholder date {text!r}: the date the request was made is required"
                if text
                else "is empty: the date the request was made is required",
            )
        closed = self._date("closed", self.closed_col, row)
        if closed is not None and closed[0] < created[0]:
            raise _Bad(
                header[self.closed_col],
                f"closed {row[self.closed_col].strip()!r} is before created "
                f"{row[self.created_col].strip()!r}",
            )
        due = self._date("due", self.due_col, row)

        status = None
        if self.status_col >= 0:
            value = row[self.status_col].strip()
            if value:
                status = m.status_values.get(value.casefold(), m.status_default)
                if status is None:
                    known = ", ".join(sorted({k for k in m.status_values}))
                    raise _Bad(
                        header[self.status_col],
                        f"{value!r} is not a status this mapping knows (known: {known})",
                    )
        if status is None:
            status = "closed" if closed is not None else "new"

        lon, lat = self._point(row)

        title = self.title(row)
        description = title if self.same_text else self.description(row)
        if not title and not description:
            raise _Bad(self.description_label, "the title and the description are both empty")
        if len(description) > m.description_limit:
            raise _Bad(
                self.description_label,
                f"is {len(description):,} characters long; a description has at most "
                f"{m.description_limit:,}",
            )
        if not title:
            title = " ".join(description.split())[:TITLE_LIMIT]
        else:
            title = " ".join(title.split())
            if len(title) > TITLE_LIMIT:
                raise _Bad(
                    self.title_label,
                    f"is {len(title)} characters long; a title has at most {TITLE_LIMIT}",
                )
        description = description or title
        address = " ".join(self.address(row).split())
        if len(address) > ADDRESS_LIMIT:
            raise _Bad(
                self.address_label,
                f"is {len(address)} characters long; an address has at most {ADDRESS_LIMIT}",
            )

        row_department = None
        if self.dept_col >= 0:
            value = row[self.dept_col].strip()
            if value:
                name = row[self.dept_name_col].strip() if self.dept_name_col >= 0 else ""
                row_department = self.catalog.department(value, name)
        service_value = row[self.service_col].strip() if self.service_col >= 0 else ""
        service_label = header[self.service_col] if self.service_col >= 0 else "service"
        service_id, service_department, days = self.catalog.service(
            service_value, row_department, service_label
        )

        if due is None:
            key = (created[0], days)
            due = self.due_cache.get(key)
            if due is None:
                moment = self.calendar.add_working_days(created[0], days)
                due = self.due_cache[key] = (
                    moment,
                    connection.ops.adapt_datetimefield_value(moment),
                )
        resolved = closed if status in ("resolved", "closed") else None
        if status == "resolved":
            closed = None
        return (
            f"{tracking_prefix}{line}",
            "import",  # Case.Channel.IMPORT
            service_id,
            row_department or service_department,
            self.places.area(lon, lat) if self.locating else self.places.city,
            title,
            description,
            address,
            lon,
            lat,
            status,
            created[1],
            due[1],
            resolved[1] if resolved else None,
            closed[1] if closed else None,
            m.source,
            external_id,
        )

    def refuse(self, line: int, bad: _Bad, row: list[str]) -> None:
        raw = dict(zip(self.header, row, strict=False))
        if len(row) > len(self.header):
            raw["(extra fields)"] = row[len(self.header) :]
        self.quarantine.append(_Quarantined(line, bad.field[:100], bad.reason[:300], raw))


def _existing(source: str, ids: list[str]) -> set[str]:
    """Which of these ids of the source are in the store already: one query, written out
    because the ORM's per-value preparation of a 2,000-long IN list cost a third of an import.
    The empty-id condition lets the database use the partial unique index (source, external_id).
    """
    quote = connection.ops.quote_name
    sql = "SELECT {id} FROM {table} WHERE {source} = %s AND NOT ({id} = %s) AND {id} {ids}"
    sql = sql.format(
        id=quote(Case._meta.get_field("external_id").column),
        table=quote(Case._meta.db_table),
        source=quote(Case._meta.get_field("source").column),
        ids="= ANY(%s)"
        if connection.vendor == "postgresql"
        else f"IN ({', '.join(['%s'] * len(ids))})",
    )
    params = [source, "", ids] if connection.vendor == "postgresql" else [source, "", *ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _store(run: _Run, source: _Input, batch: ImportBatch, batch_rows: int, bar) -> None:
    """Check every row; insert the good ones a batch at a time."""
    writer = _Writer()
    pending: list[tuple] = []
    reject = run.on_error == "reject"

    def flush() -> None:
        present = _existing(run.m.source, [r[-1] for r in pending])
        fresh = [r for r in pending if r[-1] not in present] if present else pending
        run.skipped += len(pending) - len(fresh)
        if not (reject and run.quarantine):  # a rejected batch is undone anyway
            writer.insert(fresh)
            run.imported += len(fresh)
        pending.clear()
        bar.update(max(0, source.position() - bar.n))
        bar.set_postfix(imported=run.imported, quarantined=len(run.quarantine), refresh=False)

    prefix = f"IM{batch.pk}-"  # tracking numbers: IM<batch>-<line>
    case, add = run.case, pending.append
    for line, row in source.rows():
        run.read += 1
        try:
            add(case(line, row, prefix))
        except _Bad as bad:
            run.refuse(line, bad, row)
            continue
        if len(pending) >= batch_rows:
            flush()
    if pending:
        flush()


def _record(batch: ImportBatch, run: _Run, actor, *, committed: bool, label: str) -> None:
    batch.rows_read = run.read
    batch.rows_imported = run.imported if committed else 0
    batch.rows_skipped = run.skipped
    batch.rows_quarantined = len(run.quarantine)
    batch.committed = committed
    batch.finished_at = timezone.now()
    batch.save()
    QuarantinedRow.objects.bulk_create(
        [
            QuarantinedRow(batch=batch, line=q.line, field=q.field, reason=q.reason, raw=q.raw)
            for q in run.quarantine
        ],
        batch_size=500,
    )
    audit.record(
        actor,
        "cases.import",
        batch,
        detail={
            "file": batch.file,
            "format": label,
            "source": batch.source,
            "on_error": run.on_error,
            "read": batch.rows_read,
            "imported": batch.rows_imported,
            "skipped": batch.rows_skipped,
            "quarantined": batch.rows_quarantined,
            "committed": committed,
            "services_created": run.catalog.services_created if committed else 0,
            "departments_created": run.catalog.departments_created if committed else 0,
        },
    )


def import_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    mapping: str | Path | None = None,
    on_error: str = "keep",
    progress: bool = False,
    actor="cli",
    batch_rows: int = BATCH_ROWS,
) -> ImportBatch:
    """Import a file of requests as cases; returns the batch with its counts.

    ``fmt`` names a built-in format, ``mapping`` a mapping file; with neither, the format is
    guessed from the header. ``on_error`` is "reject" (a bad row refuses the whole batch) or
    "keep" (bad rows are quarantined, the others imported). Raises ImportFailed when the file
    cannot be imported at all; nothing is stored then.
    """
    path = Path(path)
    if on_error not in ("reject", "keep"):
        raise ImportFailed(f"on_error must be 'reject' or 'keep', not {on_error!r}")
    if fmt and mapping:
        raise ImportFailed("give a format or a mapping file, not both")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    if mapping:
        spec = load_mapping(mapping)
    else:
        spec = builtin(fmt or guess(path))
    source = _Input(path, spec.encodings, spec.delimiter)
    try:
        header = source.open()
        started = timezone.now()
        run = _Run(spec, header, path, on_error)  # checks the header, the catalog, the areas
        with tqdm(
            total=source.size,
            unit="B",
            unit_scale=True,
            desc=f"import {path.name} ({spec.label})"[:60],
            file=sys.stderr,
            disable=None if progress else True,  # None: only on a terminal
            leave=False,
        ) as bar:
            try:
                with transaction.atomic():
                    batch = ImportBatch.objects.create(
                        source=spec.source,
                        file=str(path.resolve())[-500:],
                        mapping=spec.label[:200],
                        started_at=started,
                    )
                    _store(run, source, batch, batch_rows, bar)
                    if on_error == "reject" and run.quarantine:
                        raise _Rejected
                    _record(batch, run, actor, committed=True, label=spec.label)
            except _Rejected:
                with transaction.atomic():
                    batch = ImportBatch.objects.create(
                        source=spec.source,
                        file=str(path.resolve())[-500:],
                        mapping=spec.label[:200],
                        started_at=started,
                    )
                    _record(batch, run, actor, committed=False, label=spec.label)
            except IntegrityError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "conflict"
                raise ImportFailed(
                    f"{path}: the store refused the batch ({first}); was the same file being "
                    "imported at the same time? Run it again: rows already in are skipped"
                ) from None
    finally:
        source.close()
    return batch


def summary(batch: ImportBatch, *, shown: int = SHOWN_REASONS) -> str:
    """What an import did, one figure a line, with the first quarantine reasons."""
    state = "committed" if batch.committed else "rejected: nothing imported"
    lines = [
        f"import {batch.pk} of {batch.file} (format {batch.mapping}, source {batch.source}): "
        f"{state}",
        f"read         {batch.rows_read:>9,}",
        f"imported     {batch.rows_imported:>9,}",
        f"skipped      {batch.rows_skipped:>9,}  (already imported before)",
        f"quarantined  {batch.rows_quarantined:>9,}",
    ]
    for q in batch.quarantine.order_by("line", "id")[:shown]:
        lines.append(f"  line {q.line}, {q.field or 'row'}: {q.reason}")
    if batch.rows_quarantined > shown:
        lines.append(
            f"  ... and {batch.rows_quarantined - shown:,} more (quarantine of import {batch.pk})"
        )
    if not batch.committed:
        lines.append(
            "on-error reject refuses a batch with any bad row: fix the rows above, "
            "or import with --on-error keep"
        )
    return "\n".join(lines)
