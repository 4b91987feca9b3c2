"""Loading a department's data into the lake as a new, immutable version of a dataset.

    load(dataset, "permits.csv", user=u)                       CSV, any encoding, gzip'd or not
    load(dataset, "permits.xlsx", sheet="2024", user=u)        Excel (xlsx)
    load(dataset, "permits.json", user=u)                      array of objects, or JSON Lines
    load(dataset, "permits.parquet", user=u)                   Parquet
    load(dataset, "postgresql://u:pw@host/db", table="permits", user=u)    a SQL database
    load(dataset, "sqlite:///x.db", query="SELECT ...", user=u)           (a SQLAlchemy URL)

Where the data goes. Each version is its own directory, ``lake/catalog/<slug>/v-<utc>-<uuid>/``,
holding ``part-0.parquet`` and a ``_version.json`` in the lake's own format (so
``civicpulse.lake.LakeVersion.open`` reads it). A version directory is written once, under a
hidden staging name, fsynced and renamed into place; it is never rewritten or pruned by a later
load, so an old version stays readable (by readers holding its path, and for comparisons) after a
new one is loaded. The lake's own tables (``lake.write_table``) keep only their last few versions
and switch a ``_CURRENT`` file; a catalog version must outlive its successors until a retention
policy says otherwise, and its "current" pointer must move in the same transaction as the store's
records, so the pointer is ``Dataset.current_version`` in the store, not a file.

Speed. UTF-8 CSV (also with a BOM, also gzip'd) goes straight through DuckDB: ``read_csv`` with
the dialect we sniffed → ``COPY ... TO parquet``. Other encodings are transcoded to a temporary
UTF-8 file in one streaming pass first (DuckDB reads other encodings only through an extension it
would download). JSON and Parquet are read by DuckDB too. Excel rows and database rows are
streamed in chunks to temporary Parquet files, typed by their values, and unified by DuckDB.

Types. DuckDB infers CSV types from a sample; when a later value does not fit (a "N/A" deep in a
number column) the column is read as text and the load tried again, rather than failing a valid
file. Timestamps without a zone are read as the city's local time (``CIVICPULSE_TIME_ZONE``, as the
case and post importers read them) and stored as UTC instants; unsigned integers as signed ones,
as everywhere in the lake (see ``lake.parquet``).

All or nothing. A file that does not parse, is not in the encoding given or found, is empty or has
no rows raises :class:`LoadFailed` with one line naming the file and, where known, the line (row)
and column; the staging directory is removed, nothing is recorded, and the dataset's current
version stays current. A load whose checksum equals the current version's raises
:class:`Unchanged`: loading the same content twice does not make a second version.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import math
import re
import shutil
import uuid
import zoneinfo
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from civicpulse.catalog.models import Dataset, DatasetColumn, DatasetVersion
from civicpulse.core import audit, files
from civicpulse.lake import parquet as lake_parquet
from civicpulse.lake.sql import parquet_scan, quote_identifier, quote_literal

__all__ = ["KINDS", "LoadFailed", "Unchanged", "checksum", "guess_kind", "load", "source_label"]

KINDS = tuple(DatasetVersion.Kind.values)
CATALOG_DIR = "catalog"
DATA_FILE = "part-0.parquet"
CHUNK_ROWS = 50_000
MAX_TYPE_RETRIES = 50
SAMPLE_ROWS = 1000
SAMPLES_PER_COLUMN = 5
PROFILE_TEXT = 200  # characters of a min/max/sample value kept
DELIMITERS = (",", "\t", ";", "|")
_SUFFIX_KINDS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class LoadFailed(Exception):
    """A load could not be done; one line naming the source and, where known, line and column."""


class Unchanged(LoadFailed):
    """The data is the same as the current version's (same checksum): no new version."""

    def __init__(self, message: str, version: DatasetVersion):
        super().__init__(message)
        self.version = version


# --------------------------------------------------------------------------- entry point


def load(
    dataset: Dataset,
    source: str | Path,
    *,
    kind: str | None = None,
    encoding: str = "auto",
    sheet: str | int | None = None,
    table: str | None = None,
    query: str | None = None,
    user=None,
    progress: bool = True,
) -> DatasetVersion:
    """Load ``source`` as the next version of ``dataset`` and make it current."""
    kind = kind or guess_kind(source)
    if kind not in KINDS:
        raise LoadFailed(f"unknown source kind {kind!r}: use one of {', '.join(KINDS)}")
    label = source_label(source, kind)
    if kind != "sql" and (table or query):
        raise LoadFailed(f"{label}: --table and --query are for SQL sources only")
    if kind != "xlsx" and sheet is not None:
        raise LoadFailed(f"{label}: --sheet is for Excel files only")
    if kind == "sql" and bool(table) == bool(query):
        raise LoadFailed(f"{label}: name either a table or a query to read")
    if kind != "sql":
        path = Path(source)
        if not path.is_file():
            raise LoadFailed(f"{path}: no such file")
        if any(c in str(path) for c in "*?[{~"):  # DuckDB would read them as a pattern
            raise LoadFailed(f"{path}: rename the file: *, ?, [, {{ and ~ are not allowed in it")
    dataset_dir = settings.CONFIG.lake_dir / CATALOG_DIR / dataset.slug
    dataset_dir.mkdir(parents=True, exist_ok=True)
    with lake_parquet.file_lock(dataset_dir / lake_parquet.LOCK):
        staging = dataset_dir / f"{lake_parquet.STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        final: Path | None = None
        try:
            options, digest = _write_staging(
                kind, source, label, staging, encoding, sheet, table, query, progress
            )
            facts = _inspect(staging / DATA_FILE, label, digest)
            current = _current(dataset)
            if current is not None and current.checksum == facts.checksum:
                raise Unchanged(
                    f"{label}: unchanged, the same data (checksum {facts.checksum[:12]}…) as "
                    f"version {current.number} of {dataset.slug}; no new version made",
                    current,
                )
            final = _publish(staging, dataset.slug)
            return _record(dataset, final, kind, label, options, facts, user)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if final is not None:
                shutil.rmtree(final, ignore_errors=True)
            raise


def guess_kind(source: str | Path) -> str:
    """The kind of ``source``: a URL is SQL; otherwise the file's suffix (``.gz`` skipped)."""
    text = str(source)
    if re.match(r"^[a-z][a-z0-9+]*://", text, re.IGNORECASE):
        return "sql"
    suffixes = [s.lower() for s in Path(text).suffixes if s.lower() not in (".gz", ".gzip")]
    kind = _SUFFIX_KINDS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise LoadFailed(
            f"{text}: cannot tell the kind of file from its name; give --kind ({', '.join(KINDS)})"
        )
    return kind


_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|odbc_connect|credential", re.I)


def source_label(source: str | Path, kind: str) -> str:
    """How the source is named in records and messages: a file's path, or the database URL
    without its password."""
    if kind != "sql":
        return str(source)
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(str(source))
    except (ArgumentError, ValueError):  # a bad port is a ValueError
        return re.sub(r"//[^/]*@", "//", str(source)).split("?", 1)[0]
    bare = URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        # a query may carry secrets too (password=, sslpassword=, odbc_connect=...PWD=)
        query={k: v for k, v in url.query.items() if not _SECRET_KEY.search(k)},
    )
    return bare.render_as_string(hide_password=False)


# --------------------------------------------------------------------------- publishing


def _current(dataset: Dataset) -> DatasetVersion | None:
    dataset.refresh_from_db(fields=["current_version"])
    return dataset.current_version


def _publish(staging: Path, slug: str) -> Path:
    """Describe the staged file in the lake's format and rename it into place."""
    data = staging / DATA_FILE
    for leftover in staging.iterdir():
        if leftover != data:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    lake_parquet.fsync_file(data)
    version_name = lake_parquet.write_meta(staging, slug, pq.read_schema(data))
    lake_parquet.fsync_dir(staging)
    final = staging.parent / version_name
    staging.rename(final)
    lake_parquet.fsync_dir(staging.parent)
    return final


def _record(
    dataset: Dataset,
    directory: Path,
    kind: str,
    label: str,
    options: dict,
    facts: _Facts,
    user,
) -> DatasetVersion:
    """Store the version and its columns and make it current, in one transaction."""
    lake_root = settings.CONFIG.lake_dir
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        last = locked.versions.order_by("-number").values_list("number", flat=True).first()
        version = DatasetVersion.objects.create(
            dataset=locked,
            number=(last or 0) + 1,
            created_at=timezone.now(),
            created_by=user if getattr(user, "pk", None) else None,
            source_kind=kind,
            source_name=label[:500],
            source_options=options,
            encoding=options.get("encoding", ""),
            row_count=facts.row_count,
            checksum=facts.checksum,
            schema=[
                {"name": c.name, "type": c.type, "nullable": c.null_count > 0}
                for c in facts.columns
            ],
            lake_path=directory.relative_to(lake_root).as_posix(),
            size_bytes=(directory / DATA_FILE).stat().st_size,
            status=DatasetVersion.Status.CURRENT,
        )
        DatasetColumn.objects.bulk_create(
            DatasetColumn(
                version=version,
                position=i,
                name=c.name,
                type=c.type,
                nullable=c.null_count > 0,
                null_count=c.null_count,
                distinct_count=c.distinct_count,
                min_value=c.min_value,
                max_value=c.max_value,
                samples=c.samples,
            )
            for i, c in enumerate(facts.columns, start=1)
        )
        previous = locked.current_version_id
        if previous is not None:
            DatasetVersion.objects.filter(pk=previous).update(
                status=DatasetVersion.Status.SUPERSEDED
            )
        locked.current_version = version
        locked.save(update_fields=["current_version", "updated_at"])
        audit.record(
            user,
            "catalog.version_loaded",
            version,
            detail={
                "dataset": dataset.slug,
                "number": version.number,
                "source": label,
                "kind": kind,
                "rows": facts.row_count,
                "checksum": facts.checksum,
                "previous": previous,
            },
        )
    dataset.current_version = version
    return version


# --------------------------------------------------------------------------- DuckDB


def _duckdb() -> duckdb.DuckDBPyConnection:
    spill = settings.CONFIG.data_dir / "duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"temp_directory": str(spill)})
    # A department's "2024-05-01 09:00" is the city's clock, as the case and post importers
    # read it: zone-less timestamps become instants in the city's zone (stored as UTC).
    con.execute(f"SET TimeZone = {quote_literal(settings.CONFIG.time_zone)}")
    return con


def _lake_cast(name: str, typ: str) -> str:
    """A select item storing column ``name`` of DuckDB type ``typ`` as the lake stores it."""
    column = quote_identifier(name)
    upper = typ.upper()
    if upper.startswith("TIMESTAMP") and "TIME ZONE" not in upper:
        # read in the session's zone, the city's (see _duckdb)
        return f"CAST({column} AS TIMESTAMPTZ) AS {column}"
    if upper in ("UTINYINT", "USMALLINT", "UINTEGER"):
        wider = {"UTINYINT": "SMALLINT", "USMALLINT": "INTEGER", "UINTEGER": "BIGINT"}[upper]
        return f"CAST({column} AS {wider}) AS {column}"
    if upper == "UBIGINT":
        return f"CAST({column} AS BIGINT) AS {column}"
    return column


def _copy_to_parquet(
    con: duckdb.DuckDBPyConnection, source_sql: str, target: Path, what: str, progress: bool
) -> str | None:
    """Write the rows of ``source_sql`` to ``target`` with lake types; return their checksum.

    DuckDB reads (and types) the rows and hands them over as Arrow batches; each batch is written
    to the Parquet file and hashed in the same pass, so the checksum costs no second read of the
    file (re-reading 1M rows took longer than hashing them). A column type the Parquet writer
    cannot store (an INTERVAL) falls back to DuckDB's own COPY, and the
    checksum (``None`` returned) is then taken from the written file."""
    described = con.execute(f"DESCRIBE {source_sql}").fetchall()
    names = [row[0] for row in described]
    if not names:
        raise LoadFailed(f"{what}: has no columns")
    _check_names(names, what)
    select = (
        f"SELECT {', '.join(_lake_cast(row[0], row[1]) for row in described)} FROM ({source_sql})"
    )
    try:
        return _stream_to_parquet(con, select, target, what, progress)
    except pa.ArrowNotImplementedError:
        target.unlink(missing_ok=True)
    con.execute(
        f"COPY ({select}) TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
    )
    return None


def _stream_to_parquet(
    con: duckdb.DuckDBPyConnection, select: str, target: Path, what: str, progress: bool
) -> str:
    """``select``'s rows streamed from DuckDB into a zstd Parquet file and the checksum, in the
    checksum's batches of ``HASH_ROWS`` rows (one row group each). Three things at once: DuckDB
    reads batch n+1 while batch n is compressed and written and batch n-1 hashed (Arrow, zstd,
    DuckDB and hashlib all let go of the GIL)."""
    reader = con.sql(select).to_arrow_reader(HASH_ROWS)
    schema = pa.schema([field.with_type(_lake_arrow_type(field.type)) for field in reader.schema])
    batches = _batches_of(iter(lambda: _next_batch(reader), None), schema)
    digest = _Digest(schema.names)
    batch = next(batches, None)
    bar = _row_bar(progress, what, None)
    try:
        with (
            pq.ParquetWriter(
                target,
                schema,
                compression="zstd",
                compression_level=ZSTD_LEVEL,
                use_dictionary=_dictionary_columns(batch),
            ) as writer,
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            hashing = None
            while batch is not None:
                reading = pool.submit(next, batches, None)
                writer.write_batch(batch, row_group_size=HASH_ROWS)
                if hashing is not None:
                    hashing.result()
                hashing = pool.submit(digest.update, batch)
                if bar is not None:
                    bar.update(batch.num_rows)
                batch = reading.result()
            if hashing is not None:
                hashing.result()
    finally:
        if bar is not None:
            bar.close()
    return digest.hexdigest()


ZSTD_LEVEL = 3  # DuckDB's default; at Arrow's (1) the 1M-row benchmark file was 6% bigger


def _dictionary_columns(first: pa.RecordBatch | None) -> list[str]:
    """The columns worth dictionary-encoding, judged on the first batch: those with fewer
    distinct values than half their rows (as DuckDB's writer does). Arrow's writer would encode
    every column so, and a column of coordinates or instants then compresses worse (a 1M-row
    311 file: 33 MB against 27 MB) and writes slower."""
    if first is None:
        return []
    return [
        field.name
        for field, column in zip(first.schema, first.columns, strict=True)
        if not pa.types.is_nested(field.type)
        and pc.count_distinct(column).as_py() < first.num_rows // 2
    ]


def _lake_arrow_type(typ: pa.DataType) -> pa.DataType:
    """The Arrow type a column is written as: what a DuckDB COPY would have stored, read back
    (instants in UTC, dictionaries as their values)."""
    if pa.types.is_timestamp(typ) and typ.tz is not None:
        return pa.timestamp(typ.unit, tz="UTC")
    if pa.types.is_dictionary(typ):
        return typ.value_type
    return typ


_DUCKDB_ERRORS = {
    "Conversion Error": duckdb.ConversionException,
    "Invalid Input Error": duckdb.InvalidInputException,
    "IO Error": duckdb.IOException,
    "Out of Memory Error": duckdb.OutOfMemoryException,
}


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    """The reader's next batch, or None at the end. DuckDB's errors while streaming reach Python
    as Arrow's ``OSError`` carrying DuckDB's message; they are raised again as DuckDB's own
    exceptions, so a load fails (or retries a column as text) as it would for a COPY."""
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except OSError as exc:
        text = str(exc)
        kind = _DUCKDB_ERRORS.get(text.split(":", 1)[0], duckdb.Error)
        raise kind(text) from None


def _check_names(names: Sequence[str], what: str) -> None:
    seen: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        if not str(name).strip():
            raise LoadFailed(f"{what}: column {position} has no name")
        folded = str(name).casefold()
        if folded in seen:
            raise LoadFailed(
                f"{what}: columns {seen[folded]!r} and {name!r} differ only in case; rename one"
            )
        seen[folded] = name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    text = re.sub(r"^[A-Za-z ]*Error: ", "", text)
    return (text.splitlines() or [type(exc).__name__])[0][:300]


# --------------------------------------------------------------------------- staging


def _write_staging(
    kind: str,
    source: str | Path,
    label: str,
    staging: Path,
    encoding: str,
    sheet: str | int | None,
    table: str | None,
    query: str | None,
    progress: bool,
) -> tuple[dict, str | None]:
    """Write the source's rows to ``staging/part-0.parquet``; return the options that read it
    and the rows' checksum (None when it must be taken from the file)."""
    target = staging / DATA_FILE
    work = staging / ".work"
    work.mkdir()
    if kind == "csv":
        return _stage_csv(Path(source), target, work, encoding, progress)
    if kind == "json":
        return _stage_json(Path(source), target, work, encoding, progress)
    if kind == "parquet":
        return _stage_parquet(Path(source), target, progress)
    if kind == "xlsx":
        return _stage_xlsx(Path(source), target, work, sheet, progress)
    return _stage_sql(str(source), label, target, work, table, query, progress)


def _text_encoding(path: Path, encoding: str) -> str:
    """The codec to read ``path`` with: found from its first MiB for "auto", else as named."""
    try:
        head = files.read_head(path)
    except files.DAMAGED as exc:
        raise LoadFailed(f"{path}: the gzip file is damaged ({exc})") from None
    except OSError as exc:
        raise LoadFailed(f"{path}: cannot be read ({exc.strerror or exc})") from None
    problem = files.text_problem(head)
    if problem:
        raise LoadFailed(f"{path}: {problem}")
    if encoding == "auto":
        return files.detect_encoding(head)
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise LoadFailed(f"unknown encoding {encoding!r}: use auto, utf-8 or gb18030") from None


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _transcode(path: Path, encoding: str, work: Path, progress: bool, guessed: bool) -> Path:
    """``path`` (gzip'd or not) rewritten as UTF-8 in ``work``, in one streaming pass; a byte the
    encoding cannot read fails the load naming its line."""
    target = work / "source-utf8.txt"
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    total = path.stat().st_size
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"{path.name[:30]} ({encoding})", unit="B", unit_scale=True)
    try:
        with open(path, "rb") as raw, open(target, "wb") as out:
            stream = files.decompressed(raw)
            first = True
            while chunk := stream.read(1024 * 1024):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = lines + chunk[: exc.start].count(b"\n") + 1
                    named = f"utf-8 or {encoding}" if guessed else encoding
                    raise LoadFailed(
                        f"{path}: line {line} is not {named} text (byte "
                        f"0x{chunk[exc.start]:02x}); give the file's encoding with --encoding"
                    ) from None
                if first:
                    text, first = text.lstrip("\ufeff"), False
                out.write(text.encode("utf-8"))
                lines += chunk.count(b"\n")
                if bar is not None:
                    bar.n = raw.tell()
                    bar.refresh()
            try:
                out.write(decoder.decode(b"", final=True).encode("utf-8"))
            except UnicodeDecodeError:
                raise LoadFailed(
                    f"{path}: the last line ends inside a character; the file is cut or not "
                    f"{encoding} text"
                ) from None
    except files.DAMAGED as exc:
        raise LoadFailed(f"{path}: the gzip file is damaged after line {lines} ({exc})") from None
    finally:
        if bar is not None:
            bar.close()
    return target


# ----------------------------------------------------------------------- CSV


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV file from its first lines: the candidate that splits the header
    into the most fields and the following lines into as many."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the head may cut the last line short
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        agreeing = sum(1 for row in rows[1:] if len(row) == width)
        if width > best_fields and agreeing >= 0.8 * (len(rows) - 1):
            best, best_fields = delimiter, width
    return best


def _stage_csv(
    path: Path, target: Path, work: Path, encoding: str, progress: bool
) -> tuple[dict, str | None]:
    chosen = _text_encoding(path, encoding)
    readable = path
    if not _is_utf8(chosen):
        readable = _transcode(path, chosen, work, progress, encoding == "auto")
    with files.open_binary(readable) as stream:
        head = stream.read(256 * 1024).decode("utf-8", errors="replace").lstrip("\ufeff")
    delimiter = sniff_delimiter(head)
    fault = _head_fault(head, delimiter)
    if fault:
        raise LoadFailed(f"{path}: {fault}")
    compression = "gzip" if files.is_gzip(readable) else "none"
    con = _duckdb()
    try:
        try:
            types = _codes_as_text(con, readable, delimiter, compression)
        except duckdb.Error as exc:  # a broken file: the same report as the load would give
            raise LoadFailed(_csv_message(path, readable, chosen, delimiter, exc)) from None
        for _attempt in range(MAX_TYPE_RETRIES):
            source = _read_csv_sql(readable, delimiter, compression, types)
            try:
                digest = _copy_to_parquet(con, source, target, str(path), progress)
                break
            except duckdb.ConversionException as exc:
                column = re.search(r"Column (.+?) is being converted as type", str(exc))
                if column is None or column.group(1) in types:
                    raise LoadFailed(_csv_message(path, readable, chosen, delimiter, exc)) from None
                types[column.group(1)] = "VARCHAR"  # a late value does not fit: keep it as text
            except duckdb.Error as exc:
                raise LoadFailed(_csv_message(path, readable, chosen, delimiter, exc)) from None
        else:
            raise LoadFailed(f"{path}: too many columns change type deep in the file")
    finally:
        con.close()
    options = {
        "encoding": chosen,
        "delimiter": delimiter,
        "gzip": compression == "gzip",
        "text_columns": sorted(types),
    }
    return options, digest


def _codes_as_text(
    con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, compression: str
) -> dict[str, str]:
    """Columns DuckDB would read as numbers but whose values start with a 0 ("010010", "01"):
    codes, not quantities (postcodes, industry and division codes), kept as text so that no
    leading zero is lost. Judged on the rows DuckDB's own sniffer reads (``SNIFF_ROWS``)."""
    source = _read_csv_sql(path, delimiter, compression, {})
    numeric = [
        name
        for name, typ, *_ in con.execute(f"DESCRIBE {source}").fetchall()
        if typ.upper() in _NUMBER_TYPES or typ.upper().startswith("DECIMAL")
    ]
    if not numeric:
        return {}
    text = source.replace("strict_mode=true", "strict_mode=true, all_varchar=true")
    checks = ", ".join(
        f"bool_or(regexp_matches({quote_identifier(n)}, '^[+-]?0[0-9]'))" for n in numeric
    )
    found = con.execute(f"SELECT {checks} FROM ({text} LIMIT {SNIFF_ROWS})")
    return {n: "VARCHAR" for n, zero in zip(numeric, found.fetchone(), strict=True) if zero}


SNIFF_ROWS = 20_480  # DuckDB's default sample_size
_NUMBER_TYPES = frozenset(
    "TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT".split()
    + ["DOUBLE", "FLOAT"]
)


def _read_csv_sql(path: Path, delimiter: str, compression: str, types: dict[str, str]) -> str:
    options = [
        f"delim={quote_literal(delimiter)}",
        "header=true",
        "quote='\"'",
        "escape='\"'",
        "strict_mode=true",
        "encoding='utf-8'",
        f"compression={quote_literal(compression)}",
    ]
    if types:
        items = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items())
        options.append(f"types={{{items}}}")
    return f"SELECT * FROM read_csv({quote_literal(str(path))}, {', '.join(options)})"


def _csv_message(
    path: Path, readable: Path, encoding: str, delimiter: str, exc: duckdb.Error
) -> str:
    """One line for a CSV DuckDB refused: our own reading of the first bad line when we can
    find it (DuckDB's sniffer errors name none), else DuckDB's line and reason."""
    text = str(exc)
    if "Invalid unicode" in text:
        line = files.undecodable_line(readable, "utf-8")
        where = f"line {line}" if line else "a line"
        return (
            f"{path}: {where} is not {encoding} text; give the file's encoding with --encoding "
            "(e.g. gb18030)"
        )
    fault = _csv_fault(readable, delimiter)
    if fault:
        return f"{path}: {fault}"
    line = re.search(r"CSV Error on Line: (\d+)", text)
    column = re.search(r'converting column "([^"]+)"', text)
    reason = next(
        (
            ln.strip()
            for ln in text.splitlines()
            if ln.strip()
            and not ln.startswith(("CSV Error", "Original Line", "Conversion Error"))
            and "Error:" not in ln
        ),
        _first_line(exc),
    )
    parts = [str(path)]
    if line:
        parts.append(f"line {line.group(1)}")
    if column:
        parts.append(f"column {column.group(1)!r}")
    return ": ".join(parts) + f": {reason}"


def _csv_fault(path: Path, delimiter: str) -> str | None:
    """The first line of a UTF-8 CSV file that breaks it (ragged row, open quote), or None.

    Read on the error path only (and over the head, see :func:`_head_fault`): DuckDB's sniffer
    names no line when a file defeats it."""
    try:
        with files.open_binary(path) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            return _rows_fault(text, delimiter, complete=True)
    except (OSError, *files.DAMAGED):
        return None


def _head_fault(head: str, delimiter: str) -> str | None:
    """A ragged row among the first complete lines, found before DuckDB's sniffer sees them (it
    may take a ragged file for one with another header, or none)."""
    lines = head.splitlines(keepends=True)
    if len(lines) > 1 and not head.endswith(("\n", "\r")):
        lines = lines[:-1]
    return _rows_fault(iter(lines), delimiter, complete=False)


def _rows_fault(lines, delimiter: str, *, complete: bool) -> str | None:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    width = None
    start = 1
    try:
        for row in reader:
            if width is None:
                width = len(row)
            elif row and len(row) != width:
                return f"line {start} has {len(row)} fields, the header has {width}"
            start = reader.line_num + 1
    except csv.Error as exc:
        # In a head cut short, an open quote may close beyond it: only a whole file can tell.
        return f"line {start}: not readable as CSV ({exc})" if complete else None
    if width is None and complete:
        return "is empty"
    return None


# ----------------------------------------------------------------------- JSON and Parquet


def _stage_json(
    path: Path, target: Path, work: Path, encoding: str, progress: bool
) -> tuple[dict, str | None]:
    chosen = _text_encoding(path, encoding)
    readable = (
        path if _is_utf8(chosen) else _transcode(path, chosen, work, progress, encoding == "auto")
    )
    compression = "gzip" if files.is_gzip(readable) else "none"
    with files.open_binary(readable) as stream:
        first = stream.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    layout = "array" if first.startswith("[") else "newline_delimited"
    source = (
        f"SELECT * FROM read_json({quote_literal(str(readable))}, format={quote_literal(layout)}, "
        f"compression={quote_literal(compression)}, sample_size=-1)"
    )
    con = _duckdb()
    try:
        digest = _copy_to_parquet(con, source, target, str(path), progress)
    except duckdb.Error as exc:
        raise LoadFailed(f"{path}: not readable as JSON ({_first_line(exc)})") from None
    finally:
        con.close()
    return {"encoding": chosen, "layout": layout, "gzip": compression == "gzip"}, digest


def _stage_parquet(path: Path, target: Path, progress: bool) -> tuple[dict, str | None]:
    con = _duckdb()
    try:
        digest = _copy_to_parquet(
            con, f"SELECT * FROM {parquet_scan(str(path))}", target, str(path), progress
        )
    except duckdb.Error as exc:
        raise LoadFailed(f"{path}: not readable as Parquet ({_first_line(exc)})") from None
    finally:
        con.close()
    return {}, digest


# ----------------------------------------------------------------------- rows (Excel, SQL)


_KINDS_ORDER = ("null", "bool", "int", "float", "date", "datetime", "str")
_ARROW = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "str": pa.string(),
    "null": pa.string(),
}
_DUCKDB = {
    "bool": "BOOLEAN",
    "int": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMPTZ",
    "str": "VARCHAR",
    "null": "VARCHAR",
}


def _kind_of(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "str"
    if isinstance(value, float | decimal.Decimal):
        return "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "str"


def _join(a: str, b: str) -> str:
    """The narrowest kind holding values of kinds ``a`` and ``b``."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    pair = {a, b}
    if pair == {"int", "float"}:
        return "float"
    if pair == {"date", "datetime"}:
        return "datetime"
    return "str"


def _text(value: Any) -> str:
    """A value in a text column, written as DuckDB would cast it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _convert(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "str":
        return _text(value)
    if kind == "float":
        return float(value)
    if kind == "datetime":
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        if value.tzinfo is None:  # zone-less times are the city's clock
            value = value.replace(tzinfo=zoneinfo.ZoneInfo(settings.CONFIG.time_zone))
        return value.astimezone(dt.UTC)
    return value


@dataclass
class _RowWriter:
    """Rows streamed to Parquet chunks, each column typed by the values it has seen.

    A chunk stores each column as the narrowest type of its own values; the final COPY casts the
    unified chunks to the type that holds every value of the column (a column of integers with
    one text value becomes text). ``midnight_dates`` turns a datetime column whose values are all
    at midnight into dates (Excel has no date type of its own)."""

    names: list[str]
    work: Path
    midnight_dates: bool = False
    kinds: list[str] = field(init=False)
    midnight: list[bool] = field(init=False)
    chunks: list[Path] = field(default_factory=list)
    rows: int = 0
    _buffer: list[list[Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = ["null"] * len(self.names)
        self.midnight = [True] * len(self.names)
        self._buffer = [[] for _ in self.names]

    def add(self, row: Sequence[Any]) -> None:
        for i, column in enumerate(self._buffer):
            column.append(row[i] if i < len(row) else None)
        self.rows += 1
        if len(self._buffer[0]) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._buffer or not self._buffer[0]:
            return
        arrays = []
        for i, values in enumerate(self._buffer):
            kind = "null"
            for value in values:
                kind = _join(kind, _kind_of(value))
                if kind == "str":
                    break
            self.kinds[i] = _join(self.kinds[i], kind)
            stored = kind if kind != "null" else self.kinds[i]
            if stored == "datetime" and self.midnight[i]:
                self.midnight[i] = all(
                    v is None or not isinstance(v, dt.datetime) or v.time() == dt.time()
                    for v in values
                )
            arrays.append(pa.array([_convert(v, stored) for v in values], type=_ARROW[stored]))
        path = self.work / f"chunk-{len(self.chunks):06d}.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, names=self.names), path, compression="zstd")
        self.chunks.append(path)
        self._buffer = [[] for _ in self.names]

    def finish(self, target: Path, what: str, progress: bool) -> str | None:
        self.flush()
        if not self.chunks:
            raise LoadFailed(f"{what}: has no rows")
        files_sql = "[" + ", ".join(quote_literal(str(p)) for p in self.chunks) + "]"
        items = []
        for name, kind, midnight in zip(self.names, self.kinds, self.midnight, strict=True):
            final = _DUCKDB[kind]
            if kind == "datetime" and midnight and self.midnight_dates:
                final = "DATE"
            items.append(f"CAST({quote_identifier(name)} AS {final}) AS {quote_identifier(name)}")
        source = f"SELECT {', '.join(items)} FROM read_parquet({files_sql}, union_by_name=true)"
        con = _duckdb()
        try:
            return _copy_to_parquet(con, source, target, what, progress)
        except duckdb.Error as exc:
            raise LoadFailed(f"{what}: {_first_line(exc)}") from None
        finally:
            con.close()


def _header(cells: Iterable[Any], what: str) -> list[str]:
    names: list[str] = []
    for position, cell in enumerate(cells, start=1):
        name = _text(cell).strip() if cell is not None else ""
        names.append(name or f"column_{position}")
    _check_names(names, what)
    return names


def _stage_xlsx(
    path: Path, target: Path, work: Path, sheet: str | int | None, progress: bool
) -> tuple[dict, str | None]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise LoadFailed(f"{path}: not readable as an Excel xlsx file ({exc})") from None
    try:
        if sheet is None:
            ws = book.worksheets[0]
        elif isinstance(sheet, int) or str(sheet).isdigit():
            index = int(sheet)
            if not 1 <= index <= len(book.worksheets):
                raise LoadFailed(f"{path}: has no sheet {index} (it has {len(book.worksheets)})")
            ws = book.worksheets[index - 1]
        elif sheet in book.sheetnames:
            ws = book[sheet]
        else:
            raise LoadFailed(
                f"{path}: has no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)})"
            )
        what = f"{path} [{ws.title}]"
        rows = ws.iter_rows(values_only=True)
        header_row = 0
        for header_row, cells in enumerate(rows, start=1):  # noqa: B007 - the header's row
            if any(c is not None and str(c).strip() for c in cells):
                break
        else:
            raise LoadFailed(f"{what}: is empty")
        width = max(i for i, c in enumerate(cells, start=1) if c is not None and str(c).strip())
        writer = _RowWriter(_header(cells[:width], what), work, midnight_dates=True)
        bar = _row_bar(progress, what, (ws.max_row or 0) - header_row)
        try:
            for number, cells in enumerate(rows, start=header_row + 1):
                if not any(c is not None and c != "" for c in cells):
                    continue  # Excel's blank rows
                extra = [c for c in cells[width:] if c is not None and str(c).strip()]
                if extra:
                    raise LoadFailed(
                        f"{what}: row {number} has a value beyond the header's {width} columns "
                        f"({_text(extra[0])[:40]!r})"
                    )
                writer.add(cells[:width])
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        digest = writer.finish(target, what, progress)
        return {"sheet": ws.title, "header_row": header_row}, digest
    finally:
        book.close()


def _row_bar(progress: bool, what: str, total: int | None):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, desc=what[-40:], unit="rows", unit_scale=True)


def _stage_sql(
    url: str,
    label: str,
    target: Path,
    work: Path,
    table: str | None,
    query: str | None,
    progress: bool,
) -> tuple[dict, str | None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise LoadFailed(f"{label}: not a database URL SQLAlchemy can use ({exc})") from None
    what = f"{label} ({table or 'query'})"
    try:
        with engine.connect() as conn:
            if table:
                quote = conn.dialect.identifier_preparer.quote
                parts = table.split(".")
                if len(parts) > 2 or not all(parts):
                    raise LoadFailed(f"{label}: {table!r} is not a table name (schema.table)")
                sql = "SELECT * FROM " + ".".join(quote(p) for p in parts)
            else:
                sql = query or ""
            result = conn.execution_options(stream_results=True).execute(text(sql))
            if not result.returns_rows:
                raise LoadFailed(f"{what}: the query returns no rows to load")
            writer = _RowWriter(_header(list(result.keys()), what), work)
            bar = _row_bar(progress, what, None)
            try:
                while batch := result.fetchmany(10_000):
                    for row in batch:
                        writer.add(tuple(row))
                    if bar is not None:
                        bar.update(len(batch))
            finally:
                if bar is not None:
                    bar.close()
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise LoadFailed(f"{what}: the database refused: {detail}") from None
    finally:
        engine.dispose()
    digest = writer.finish(target, what, progress)
    return ({"table": table} if table else {"query": query}), digest


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    type: str
    null_count: int
    distinct_count: int
    min_value: str
    max_value: str
    samples: list[str]


@dataclass(frozen=True)
class _Facts:
    row_count: int
    checksum: str
    columns: list[ColumnFacts]


_UNORDERED = ("STRUCT", "MAP", "UNION", "BLOB", "JSON")


def _inspect(data: Path, what: str, digest: str | None = None) -> _Facts:
    """The version's row count, checksum (``digest`` when the writer took it, else from the
    file) and each column's profile."""
    con = _duckdb()
    try:
        relation = f"read_parquet({quote_literal(str(data))})"
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        columns = [(row[0], row[1]) for row in described]
        aggregates = ["count(*)"]
        for name, typ in columns:
            column = quote_identifier(name)
            aggregates += [f"count({column})", f"approx_count_distinct({column})"]
            if typ.upper().startswith(_UNORDERED) or typ.endswith("]"):
                aggregates += ["NULL", "NULL"]
            else:
                aggregates += [f"CAST(min({column}) AS VARCHAR)", f"CAST(max({column}) AS VARCHAR)"]
        # A checksum still to take (Arrow and hashlib, which release the GIL) runs beside
        # DuckDB's profile.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(checksum, data) if digest is None else None
            stats = con.execute(f"SELECT {', '.join(aggregates)} FROM {relation}").fetchone()
            digest_value = pending.result() if pending is not None else digest
        row_count = int(stats[0])
        if row_count == 0:
            raise LoadFailed(f"{what}: has a header but no rows")
        sample = con.execute(f"SELECT * FROM {relation} LIMIT {SAMPLE_ROWS}").fetchall()
        facts = []
        for i, (name, typ) in enumerate(columns):
            non_null, distinct, low, high = stats[1 + 4 * i : 5 + 4 * i]
            seen: list[str] = []
            for row in sample:
                value = row[i]
                if value is None:
                    continue
                shown = _cut(_text(value))
                if shown not in seen:
                    seen.append(shown)
                if len(seen) >= SAMPLES_PER_COLUMN:
                    break
            facts.append(
                ColumnFacts(
                    name=name,
                    type=typ,
                    null_count=row_count - int(non_null),
                    distinct_count=int(distinct or 0),
                    min_value=_cut(low or ""),
                    max_value=_cut(high or ""),
                    samples=seen,
                )
            )
        return _Facts(row_count, digest_value, facts)
    finally:
        con.close()


def _cut(text: str) -> str:
    return text if len(text) <= PROFILE_TEXT else text[: PROFILE_TEXT - 1] + "…"


def checksum(data: Path) -> str:
    """SHA-256 of a staged version's column names and rows, in order, whatever the source format.

    Every loader writes the same lake types for the same values (BIGINT, DOUBLE, VARCHAR,
    TIMESTAMPTZ, ...), so the checksum is taken over the Parquet data in Arrow form, column by
    column, each in a canonical form: numbers, times, dates and booleans as 64-bit values
    (integers of any width as int64, floats as float64, times as UTC microseconds) with their
    null mask; text and bytes as two streams, the values' lengths (-1 for a null) and their bytes,
    an unambiguous encoding (no value can pass for a null or for two values); anything else as
    text. The column digests are hashed in column order after the column names and their kinds.
    Batch sizes and row groups do not matter; row order does. So the same rows in the same order
    give the same checksum from CSV, Excel, JSON, Parquet or a database, as long as they were
    read as the same values (a CSV "1.50" and an Excel 1.5 are both the number 1.5; a database
    DECIMAL 1.50 is another kind of value, and so is a number stored as text).

    Per-row SHA-256 in DuckDB was tried first and cost more than the load itself (3.5 s for 1M
    rows); whole Arrow buffers through ``hashlib`` cost a fraction of it. DuckDB's ``hash()`` is
    64 bits and not promised to stay the same between releases.
    """
    parquet_file = pq.ParquetFile(data)
    schema = parquet_file.schema_arrow
    digest = _Digest(schema.names)
    for batch in _batches_of(
        parquet_file.iter_batches(batch_size=HASH_ROWS, use_threads=True), schema
    ):
        digest.update(batch)
    return digest.hexdigest()


HASH_ROWS = 131_072


def _batches_of(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterable[pa.RecordBatch]:
    """``batches`` (of ``schema``'s names, any sizes) as consecutive batches of ``HASH_ROWS``
    rows (the last one shorter), cast to ``schema``. The checksum hashes a text column's lengths
    and bytes batch by batch, so the batch boundaries are part of its definition: they fall
    every ``HASH_ROWS`` rows, as ``ParquetFile.iter_batches`` reads a file whatever its row
    groups."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.schema != schema:
            batch = batch.cast(schema)
        if not pending and batch.num_rows == HASH_ROWS:
            yield batch  # the common case, as it came
            continue
        pending.append(batch)
        rows += batch.num_rows
        while rows >= HASH_ROWS:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, HASH_ROWS).combine_chunks().to_batches()[0]
            rest = table.slice(HASH_ROWS)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(pending, schema=schema).combine_chunks().to_batches()[0]


class _Digest:
    """The checksum (see :func:`checksum`) fed batch by batch: by :func:`checksum` from a file,
    and by the loader from the batches it writes, so both are the one definition."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.columns = [hashlib.sha256() for _ in self.names]
        self.kinds = [""] * len(self.names)

    def update(self, batch: pa.RecordBatch) -> None:
        for i, column in enumerate(batch.columns):
            self.kinds[i], parts = _canonical(column)
            for part in parts:
                self.columns[i].update(part)

    def hexdigest(self) -> str:
        whole = hashlib.sha256(
            json.dumps([self.names, self.kinds], ensure_ascii=False).encode("utf-8")
        )
        for column in self.columns:
            whole.update(column.digest())
        return whole.hexdigest()


def _canonical(column: pa.Array) -> tuple[str, list]:
    """A column's kind and the byte buffers that stand for its values (see :func:`checksum`)."""
    typ = column.type
    fixed = None
    if pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        kind, fixed = "integer", column.cast(pa.int64())
    elif pa.types.is_floating(typ):
        kind, fixed = "float", column.cast(pa.float64())
    elif pa.types.is_timestamp(typ):
        kind = "timestamp"
        fixed = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    elif pa.types.is_date(typ):
        kind, fixed = "date", column.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    if fixed is not None:
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        values = pc.fill_null(fixed, 0).to_numpy(zero_copy_only=False).astype("<i8", copy=False)
        if kind == "float":
            values = pc.fill_null(fixed, 0.0).to_numpy(zero_copy_only=False).astype("<f8")
        return kind, [nulls.tobytes(), values.tobytes()]
    text = _as_text(column)
    lengths = pc.fill_null(pc.binary_length(text), -1).cast(pa.int64())
    parts = [lengths.to_numpy(zero_copy_only=False).astype("<i8", copy=False).tobytes()]
    _validity, offsets, values = text.buffers()
    if values is not None:
        bounds = np.frombuffer(offsets, dtype=np.int64)
        first, last = bounds[text.offset], bounds[text.offset + len(text)]
        parts.append(memoryview(values)[first:last])
    return "bytes" if pa.types.is_large_binary(text.type) else "text", parts


def _as_text(column: pa.Array) -> pa.Array:
    """A column as large strings (nested values as JSON, bytes as bytes), its nulls kept."""
    typ = column.type
    if pa.types.is_nested(typ) or pa.types.is_dictionary(typ):
        values = [
            None if v is None else json.dumps(v, default=str, sort_keys=True)
            for v in column.to_pylist()
        ]
        return pa.array(values, type=pa.large_string())
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return column.cast(pa.large_binary())  # bytes hashed as they are
    return column.cast(pa.large_string())
