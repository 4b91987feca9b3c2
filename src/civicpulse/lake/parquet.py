"""Atomic Parquet I/O for lake tables (pyarrow only).

A lake table ``name`` lives in its own directory under the lake root::

    root/name/_CURRENT                         one line: the name of the current version directory
    root/name/_LOCK                            advisory lock: one writer per table at a time
    root/name/v-20260102T030405123456Z-1a2b3c4d/
        _version.json                          columns, Arrow schema and partitioning of the version
        part-0.parquet                         an unpartitioned table
        month=2026-01/part-0.parquet           a Hive-partitioned one (``partition_by=["month"]``)
        month=2026-01/part-<uuid>.parquet      files added later by :func:`append_partition`

:func:`write_table` writes a whole new version into a hidden staging directory, fsyncs every file
and directory, renames the staging directory to ``v-<utc timestamp>-<short uuid>`` and only then
switches ``_CURRENT`` (temporary file + ``os.replace``). A crash at any point before that switch
leaves the previous version current and untouched; readers never see a half-written version. After
the switch the oldest versions beyond ``keep`` are deleted (a reader still scanning such an old
version would lose it, so keep more than one).

:func:`append_partition` adds files to the current version for append-only facts (posts by day):
each file is written as ``.tmp-<uuid>.parquet`` and renamed to ``part-<uuid>.parquet``, so readers
never see half a file. Every file lands atomically, but an append that spans several partitions is
not atomic as a whole, and appending the same batch twice stores its rows twice: idempotency is the
caller's job (remember which batches were appended, or rewrite the table with :func:`write_table`).

Every reader (pyarrow here, DuckDB and Spark through :mod:`civicpulse.lake.registry`) ignores files
and directories whose names start with ``.`` or ``_``.

Values are normalised on the way in so that DuckDB, Spark and pandas give the same answers:
timestamps are stored as microsecond UTC instants (zone-less timestamps are taken to be UTC;
nanoseconds are truncated; Spark reads zone-less Parquet timestamps as ``TIMESTAMP_NTZ``, which
behaves differently), unsigned integers become the next wider signed integer (Spark has none),
dictionary (categorical) columns are decoded and ``date64`` becomes ``date32``. A pandas index is
not stored: ``reset_index()`` first if it carries data.

On POSIX the per-table lock is an ``flock``; elsewhere there is no lock, so only one process may
write a given table at a time.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from civicpulse.lake.errors import LakeError

try:  # POSIX only; on Windows writers are not serialised (see the module docstring).
    import fcntl
except ImportError:  # pragma: no cover - not on the supported CI platform
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_KEEP",
    "LakeVersion",
    "append_partition",
    "current_path",
    "current_version",
    "read_table",
    "validate_table_name",
    "write_table",
]

DEFAULT_KEEP = 3
POINTER = "_CURRENT"
LOCK = "_LOCK"
META = "_version.json"
META_FORMAT = 1
STAGING_PREFIX = ".staging-"
TMP_PREFIX = ".tmp-"

TABLE_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
PARTITION_COLUMN_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
VERSION_RE = re.compile(r"v-\d{8}T\d{12}Z-[0-9a-f]{8}")
# Characters that need escaping in a Hive path segment on some engine or OS. Rather than escape
# them (DuckDB, Spark and pyarrow unescape differently), partition values may not contain them.
_FORBIDDEN_IN_VALUE = frozenset("/\\=%:*?\"<>|#'[]{}^")
_STALE_STAGING_SECONDS = 24 * 3600  # without a lock, only clearly abandoned staging dirs go


def validate_table_name(name: object) -> str:
    """Return ``name`` if it is a valid lake table name, else raise :class:`LakeError`."""
    if not isinstance(name, str) or not TABLE_NAME_RE.fullmatch(name):
        raise LakeError(
            f"invalid lake table name {name!r}: use 1-63 characters, lowercase letters, digits "
            "and '_', starting with a letter"
        )
    return name


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class LakeVersion:
    """One immutable-by-rewrite version of a lake table (its directory and what it holds)."""

    table: str
    path: Path
    schema: pa.Schema
    partition_by: tuple[str, ...]
    created_at: dt.datetime

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def file_pattern(self) -> str:
        """Glob of the data files relative to :attr:`path` (never matches ``.tmp-`` files)."""
        return "/".join([*(f"{column}=*" for column in self.partition_by), "part-*.parquet"])

    @property
    def file_glob(self) -> str:
        """Absolute glob of the data files, with forward slashes (what DuckDB wants)."""
        return f"{self.path.as_posix()}/{self.file_pattern}"

    @classmethod
    def open(cls, path: Path) -> LakeVersion:
        """The version stored in directory ``path`` (``root/<table>/v-...``)."""
        path = Path(path)
        return _read_version(path.parent.name, path)

    def files(self) -> list[Path]:
        return sorted(self.path.glob(self.file_pattern))

    def row_count(self) -> int:
        """Rows in the version, from the Parquet footers only."""
        return sum(pq.ParquetFile(path).metadata.num_rows for path in self.files())

    def read(self) -> pa.Table:
        """The whole version as one Arrow table, columns in their written order."""
        partitioning = None
        if self.partition_by:
            fields = [self.schema.field(column) for column in self.partition_by]
            partitioning = ds.partitioning(pa.schema(fields), flavor="hive")
        dataset = ds.dataset(
            [str(path) for path in self.files()],
            schema=self.schema,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=str(self.path),
        )
        return dataset.to_table().select(self.schema.names)


def _read_version(table: str, path: Path) -> LakeVersion:
    meta_path = path / META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(meta["arrow_schema"])))
        partition_by = tuple(meta["partition_by"])
        created_at = dt.datetime.fromisoformat(meta["created_at"])
    except FileNotFoundError:
        raise LakeError(
            f"{meta_path} is missing: {path.name} is not a complete lake version; point "
            f"{path.parent / POINTER} at another v-* directory"
        ) from None
    except (ValueError, KeyError, TypeError, pa.ArrowInvalid) as exc:
        raise LakeError(
            f"{meta_path} is unreadable ({exc}): point {path.parent / POINTER} at another "
            "v-* directory"
        ) from None
    return LakeVersion(table, path, schema, partition_by, created_at)


def _current_version_name(table_dir: Path) -> str | None:
    pointer = table_dir / POINTER
    try:
        text = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not VERSION_RE.fullmatch(text):
        raise LakeError(
            f"{pointer} is corrupted (it holds {text[:40]!r}): write the name of one of the v-* "
            f"directories under {table_dir} into it"
        )
    if not (table_dir / text).is_dir():
        raise LakeError(
            f"{pointer} names {text}, which is missing: write the name of an existing v-* "
            f"directory under {table_dir} into it"
        )
    return text


def current_path(root: Path, name: str) -> Path | None:
    """The directory of the current version of table ``name``, or None if it was never written."""
    table_dir = Path(root) / validate_table_name(name)
    version_name = _current_version_name(table_dir)
    return None if version_name is None else table_dir / version_name


def current_version(root: Path, name: str) -> LakeVersion | None:
    """The current version of table ``name`` with its schema, or None if it was never written."""
    path = current_path(root, name)
    return None if path is None else _read_version(name, path)


def read_table(root: Path, name: str) -> pa.Table:
    """Read the current version of table ``name`` (Hive partitions become columns again)."""
    version = current_version(root, name)
    if version is None:
        raise LakeError(f"lake table {name!r} does not exist under {root}: write it first")
    return version.read()


# --------------------------------------------------------------------------- writing


def write_table(
    root: Path,
    name: str,
    data: pa.Table | pd.DataFrame,
    *,
    partition_by: Sequence[str] | None = None,
    keep: int = DEFAULT_KEEP,
) -> Path:
    """Write ``data`` as a new version of table ``name`` and make it current; return its path.

    ``partition_by`` names columns (strings, integers or dates without nulls) to Hive-partition
    by. ``keep`` versions, the new one included, are kept; older ones are deleted.
    """
    name = validate_table_name(name)
    if not isinstance(keep, int) or keep < 1:
        raise LakeError(f"keep must be a whole number of versions >= 1, not {keep!r}")
    table = _prepare(data, name)
    _refuse_untyped(table, name)
    columns = _partition_columns(table, partition_by, name)
    table_dir = Path(root) / name
    with _table_lock(table_dir):
        version = _publish(table_dir, name, table, columns)
        _prune(table_dir, version.name, keep)
    return version.path


def append_partition(
    root: Path,
    name: str,
    data: pa.Table | pd.DataFrame,
    *,
    partition_by: Sequence[str] | None,
) -> list[Path]:
    """Add ``data`` to the current version of table ``name``; return the new data files.

    The table's columns and partitioning must match (types are cast when that is lossless). If the
    table does not exist yet, ``data`` becomes its first version. Not idempotent: appending a batch
    twice stores it twice (see the module docstring).
    """
    name = validate_table_name(name)
    table = _prepare(data, name)
    table_dir = Path(root) / name
    with _table_lock(table_dir):
        version_name = _current_version_name(table_dir)
        if version_name is None:
            _refuse_untyped(table, name)
            columns = _partition_columns(table, partition_by, name)
            return _publish(table_dir, name, table, columns).files()
        version = _read_version(name, table_dir / version_name)
        columns = version.partition_by
        if _as_columns(partition_by) != columns:
            raise LakeError(
                f"lake table {name!r} is partitioned by {list(columns)}, not "
                f"{list(_as_columns(partition_by))}: append with partition_by={list(columns)} "
                "or rewrite the table with write_table"
            )
        table = _conform(table, version.schema, name)
        _partition_columns(table, columns, name)
        if table.num_rows == 0:
            return []
        written = []
        for segments, part in _split(table, columns):
            directory = version.path.joinpath(*segments)
            created = _make_dirs(directory, version.path)
            token = uuid.uuid4().hex
            tmp = directory / f"{TMP_PREFIX}{token}.parquet"
            final = directory / f"part-{token}.parquet"
            try:
                _write_file(part, tmp)
                os.replace(tmp, final)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            for path in [directory, *(c.parent for c in created)]:
                fsync_dir(path)
            written.append(final)
        return written


def _publish(
    table_dir: Path, name: str, table: pa.Table, partition_by: tuple[str, ...]
) -> LakeVersion:
    """Write a complete version next to the current one, then switch the pointer to it."""
    table_dir.mkdir(parents=True, exist_ok=True)
    staging = table_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        directories = {staging}
        for segments, part in _split(table, partition_by):
            directory = staging.joinpath(*segments)
            directory.mkdir(parents=True, exist_ok=True)
            _write_file(part, directory / "part-0.parquet")
            directories.update(directory.parents[i] for i in range(len(segments)))
            directories.add(directory)
        version_name = write_meta(staging, name, table.schema, partition_by)
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(directory)
        version_path = table_dir / version_name
        os.rename(staging, version_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(table_dir)
    _switch_pointer(table_dir, version_name)
    return _read_version(name, version_path)


def write_meta(
    directory: Path, table: str, schema: pa.Schema, partition_by: Sequence[str] = ()
) -> str:
    """Describe a staged version directory in the lake's format (``_version.json``, fsynced)
    and return the name it must be renamed to (``v-<utc>-<id>``). Every writer of lake
    versions — the tables here, the catalog's dataset versions — describes them this way, so
    :meth:`LakeVersion.open` reads them all."""
    created_at = dt.datetime.now(dt.UTC)
    version_name = f"v-{created_at:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}"
    meta = {
        "format": META_FORMAT,
        "table": table,
        "version": version_name,
        "created_at": created_at.isoformat(),
        "partition_by": list(partition_by),
        "columns": [[field.name, str(field.type)] for field in schema],
        "arrow_schema": base64.b64encode(schema.serialize().to_pybytes()).decode(),
    }
    _write_text(directory / META, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return version_name


def _switch_pointer(table_dir: Path, version_name: str) -> None:
    tmp = table_dir / f"{POINTER}.tmp-{uuid.uuid4().hex}"
    _write_text(tmp, version_name + "\n")
    try:
        os.replace(tmp, table_dir / POINTER)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(table_dir)


def _prune(table_dir: Path, current: str, keep: int) -> None:
    """Delete versions beyond ``keep`` (never the current one) and leftovers of crashed writes."""
    versions = sorted(
        p.name for p in table_dir.iterdir() if p.is_dir() and VERSION_RE.fullmatch(p.name)
    )
    kept = set(versions[-keep:]) | {current}
    for version in versions:
        if version not in kept:
            shutil.rmtree(table_dir / version, ignore_errors=True)
    now = time.time()
    for path in table_dir.iterdir():
        if path.name.startswith(STAGING_PREFIX):
            # Under the lock no other writer can own a staging dir; without one, be patient.
            if fcntl is not None or now - path.stat().st_mtime > _STALE_STAGING_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f"{POINTER}.tmp-"):
            path.unlink(missing_ok=True)


def _table_lock(table_dir: Path) -> contextlib.AbstractContextManager[None]:
    table_dir.mkdir(parents=True, exist_ok=True)
    return file_lock(table_dir / LOCK)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing); a no-op off POSIX."""
    with open(path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- files


def _write_file(table: pa.Table, path: Path) -> None:
    """Write one Parquet file and fsync it (the caller renames it into place)."""
    pq.write_table(table, str(path), compression="zstd")
    fsync_file(path)


def _write_text(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_file(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or new entry in directory ``path`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":  # Windows cannot open a directory to fsync it
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path, base: Path) -> list[Path]:
    """mkdir -p ``directory`` below ``base``; return the directories that were created."""
    missing = []
    current = directory
    while current != base and not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


# --------------------------------------------------------------------------- data


def _prepare(data: object, name: str) -> pa.Table:
    """Turn ``data`` into an Arrow table whose types read the same on every engine."""
    if isinstance(data, pd.DataFrame):
        try:
            table = pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LakeError(f"cannot convert the data for {name!r} to Arrow: {exc}") from None
    elif isinstance(data, pa.Table):
        table = data
    else:
        raise LakeError(
            f"data for lake table {name!r} must be a pyarrow Table or a pandas DataFrame, "
            f"not {type(data).__name__}"
        )
    if table.num_columns == 0:
        raise LakeError(f"data for lake table {name!r} has no columns")
    seen: dict[str, str] = {}
    for column in table.column_names:
        if not column:
            raise LakeError(f"data for lake table {name!r} has a column without a name")
        folded = column.casefold()  # Spark resolves column names case-insensitively
        if folded in seen:
            raise LakeError(
                f"data for lake table {name!r} has columns {seen[folded]!r} and {column!r}, "
                "which differ only in case: rename one"
            )
        seen[folded] = column
    fields, arrays = [], []
    for field, array in zip(table.schema, table.columns, strict=True):
        target = _lake_type(field.type)
        if target != field.type:
            try:
                array = array.cast(target, safe=not pa.types.is_timestamp(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise LakeError(
                    f"column {field.name!r} of {name!r} cannot be stored as {target}: {exc}"
                ) from None
        fields.append(pa.field(field.name, target))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


_UNSIGNED_TO_SIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.int64(),  # a safe cast: values above 2**63-1 are refused
}


def _lake_type(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(typ):
        return _lake_type(typ.value_type)
    if pa.types.is_timestamp(typ):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_date64(typ):
        return pa.date32()
    if pa.types.is_float16(typ):
        return pa.float32()
    if typ in _UNSIGNED_TO_SIGNED:
        return _UNSIGNED_TO_SIGNED[typ]
    return typ


def _refuse_untyped(table: pa.Table, name: str) -> None:
    """A new table needs a type for every column (appends cast all-null columns instead)."""
    for field in table.schema:
        if pa.types.is_null(field.type):
            raise LakeError(
                f"column {field.name!r} of {name!r} has only nulls, so it has no type: give it "
                "one (e.g. df[col].astype('string') or a pyarrow schema)"
            )


def _as_columns(partition_by: Sequence[str] | None) -> tuple[str, ...]:
    if partition_by is None:
        return ()
    if isinstance(partition_by, str):
        return (partition_by,)
    return tuple(partition_by)


def _partition_columns(
    table: pa.Table, partition_by: Sequence[str] | None, name: str
) -> tuple[str, ...]:
    columns = _as_columns(partition_by)
    if not columns:
        return ()
    if len(set(columns)) != len(columns):
        raise LakeError(f"partition_by {list(columns)} for {name!r} names a column twice")
    if len(columns) >= table.num_columns:
        raise LakeError(
            f"partition_by {list(columns)} for {name!r} uses every column: keep at least one "
            "column in the data files"
        )
    for column in columns:
        if column not in table.column_names:
            raise LakeError(
                f"partition column {column!r} is not in the data for {name!r} "
                f"(columns: {', '.join(table.column_names)})"
            )
        if not isinstance(column, str) or not PARTITION_COLUMN_RE.fullmatch(column):
            raise LakeError(
                f"partition column {column!r} of {name!r} must be letters, digits and '_', "
                "starting with a letter"
            )
        typ = table.schema.field(column).type
        if not (
            pa.types.is_string(typ)
            or pa.types.is_large_string(typ)
            or pa.types.is_integer(typ)
            or pa.types.is_date32(typ)
        ):
            raise LakeError(
                f"partition column {column!r} of {name!r} is {typ}: partition by a string, "
                "integer or date column (e.g. a day or month column derived from a timestamp)"
            )
        nulls = table.column(column).null_count
        if nulls:
            raise LakeError(
                f"partition column {column!r} of {name!r} is empty in {nulls} rows: fill it "
                "before writing"
            )
    return columns


def _segment(column: str, value: object) -> str:
    if isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, int):
        text = str(value)
    else:
        text = str(value)
        if (
            not text
            or text != text.strip()
            or text in {".", ".."}
            or text == "__HIVE_DEFAULT_PARTITION__"
            or any(ch in _FORBIDDEN_IN_VALUE or ord(ch) < 32 or ord(ch) == 127 for ch in text)
        ):
            raise LakeError(
                f"partition value {text!r} of column {column!r} cannot name a directory (empty, "
                "surrounding spaces, control characters or one of / \\ = % : * ? \" < > | # ' "
                "[ ] { } ^): clean the value or partition by another column"
            )
    segment = f"{column}={text}"
    if len(segment.encode("utf-8")) > 255:
        raise LakeError(
            f"partition value {text[:40]!r}... of column {column!r} is too long for a directory "
            "name: partition by a shorter column"
        )
    return segment


def _split(table: pa.Table, partition_by: tuple[str, ...]) -> Iterator[tuple[list[str], pa.Table]]:
    """Yield (Hive path segments, rows without the partition columns) per partition."""
    if not partition_by:
        yield [], table
        return
    if table.num_rows == 0:
        return
    order = pc.sort_indices(table, sort_keys=[(column, "ascending") for column in partition_by])
    table = table.take(order)
    change = np.zeros(table.num_rows, dtype=bool)
    change[0] = True
    for column in partition_by:
        values = table.column(column).to_numpy(zero_copy_only=False)
        change[1:] |= values[1:] != values[:-1]
    starts = np.flatnonzero(change).tolist()
    ends = [*starts[1:], table.num_rows]
    data = table.drop_columns(list(partition_by))
    for start, end in zip(starts, ends, strict=True):
        segments = [
            _segment(column, table.column(column)[start].as_py()) for column in partition_by
        ]
        yield segments, data.slice(start, end - start)


def _conform(table: pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    """Cast ``table`` to the table's ``schema`` (same columns, lossless casts only)."""
    missing = [column for column in schema.names if column not in table.column_names]
    extra = [column for column in table.column_names if column not in schema.names]
    if missing or extra:
        raise LakeError(
            f"data for {name!r} has different columns than the table (missing: "
            f"{', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'}): append the "
            "same columns, or rewrite the table with write_table"
        )
    arrays = []
    for field in schema:
        array = table.column(field.name)
        if array.type != field.type:
            try:
                array = array.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise LakeError(
                    f"column {field.name!r} of {name!r} is {array.type} but the table stores "
                    f"{field.type}: convert it, or rewrite the table with write_table"
                ) from None
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=schema)
