"""The registry of lake tables: a manifest of what the lake holds, and Ibis access to it.

``root/_registry.json`` (rewritten atomically, one writer at a time) lists each table's
description, partitioning, columns (name -> Arrow type), row count, update time and current
version. The manifest is a catalog for people and the UI; the truth about a table's data is its
``_CURRENT`` pointer, which :meth:`LakeRegistry.table` always reads. If a process dies between
switching a table and updating the manifest, the next write fixes the entry, or call
:meth:`LakeRegistry.sync`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge

from civicpulse.lake import parquet
from civicpulse.lake.errors import LakeError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from ibis.backends import BaseBackend

__all__ = ["LakeRegistry", "TableInfo"]

MANIFEST = "_registry.json"
MANIFEST_LOCK = "_registry.lock"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class TableInfo:
    """What the manifest says about one lake table."""

    name: str
    description: str
    partition_by: tuple[str, ...]
    schema: Mapping[str, str]  # column name -> Arrow type, e.g. "timestamp[us, tz=UTC]"
    row_count: int
    updated_at: dt.datetime
    path: Path  # directory of the current version


class LakeRegistry:
    """The lake tables under ``root`` and their manifest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.manifest_path = self.root / MANIFEST

    def __repr__(self) -> str:
        return f"LakeRegistry({str(self.root)!r})"

    # ------------------------------------------------------------------ writing

    def write(
        self,
        name: str,
        data: pa.Table | pd.DataFrame,
        *,
        description: str,
        partition_by: Sequence[str] | None = None,
        keep: int = parquet.DEFAULT_KEEP,
    ) -> TableInfo:
        """Replace table ``name`` with ``data`` (a new version) and record it in the manifest."""
        path = parquet.write_table(self.root, name, data, partition_by=partition_by, keep=keep)
        return self._record(name, parquet.LakeVersion.open(path), description)

    def append(
        self,
        name: str,
        data: pa.Table | pd.DataFrame,
        *,
        partition_by: Sequence[str] | None = None,
        description: str | None = None,
    ) -> TableInfo:
        """Add ``data`` to table ``name`` (see :func:`parquet.append_partition`; not idempotent).

        ``partition_by`` defaults to the table's own partitioning; a new table needs it unless it
        is unpartitioned.
        """
        parquet.validate_table_name(name)
        if partition_by is None:
            existing = parquet.current_version(self.root, name)
            partition_by = existing.partition_by if existing is not None else None
        parquet.append_partition(self.root, name, data, partition_by=partition_by)
        version = parquet.current_version(self.root, name)
        if version is None:  # append_partition creates a missing table, so only a race gets here
            raise LakeError(f"lake table {name!r} vanished while appending: append again")
        return self._record(name, version, description)

    def sync(self, name: str | None = None) -> list[TableInfo]:
        """Refresh manifest entries (all, or ``name``) from the tables' current versions."""
        names = [name] if name is not None else [info.name for info in self.list()]
        infos = []
        for table in names:
            version = parquet.current_version(self.root, table)
            if version is None:
                raise LakeError(f"lake table {table!r} has no data under {self.root}: write it")
            infos.append(self._record(table, version, None))
        return infos

    def _record(
        self, name: str, version: parquet.LakeVersion, description: str | None
    ) -> TableInfo:
        row_count = version.row_count()

        def update(tables: dict[str, Any]) -> dict[str, Any]:
            old = tables.get(name, {})
            entry = {
                "description": old.get("description", "") if description is None else description,
                "partition_by": list(version.partition_by),
                "schema": {field.name: str(field.type) for field in version.schema},
                "row_count": row_count,
                "updated_at": dt.datetime.now(dt.UTC).isoformat(),
                "path": version.path.relative_to(self.root).as_posix(),
            }
            tables[name] = entry
            return entry

        return self._info(name, self._update(update))

    # ------------------------------------------------------------------ reading

    def list(self) -> list[TableInfo]:
        """Every registered table, by name."""
        tables = self._load()
        return [self._info(name, tables[name]) for name in sorted(tables)]

    def get(self, name: str) -> TableInfo:
        """The manifest entry of ``name``; KeyError if it is not registered."""
        parquet.validate_table_name(name)
        tables = self._load()
        if name not in tables:
            known = ", ".join(sorted(tables)) or "none yet"
            raise KeyError(
                f"lake table {name!r} is not registered in {self.manifest_path} (known: {known}): "
                "write it with LakeRegistry.write first"
            )
        return self._info(name, tables[name])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._load()

    def read(self, name: str) -> pa.Table:
        """The current version of ``name`` as an Arrow table (no engine needed)."""
        self.get(name)
        return parquet.read_table(self.root, name)

    def table(self, con: BaseBackend, name: str, *, table_name: str | None = None) -> ir.Table:
        """Table ``name`` (its current version) as an Ibis table on DuckDB or PySpark.

        It is registered in ``con`` as the temporary view ``table_name`` (default ``lake_<name>``),
        replacing any earlier one, with the columns in their written order and the types of the
        written data, also for Hive partition columns. On DuckDB the files are listed at every
        query; Spark lists them once, so call this again to see later appends or versions.
        """
        self.get(name)
        version = parquet.current_version(self.root, name)
        if version is None:
            raise LakeError(
                f"lake table {name!r} is registered but {self.root / name} has no current "
                "version: write it again"
            )
        view = table_name or f"lake_{name}"
        backend = getattr(con, "name", type(con).__name__)
        if backend == "duckdb":
            return _duckdb_table(con, version, view)
        if backend == "pyspark":
            return _pyspark_table(con, version, view)
        raise LakeError(f"lake tables open on DuckDB or PySpark, not {backend}: connect() to one")

    # ------------------------------------------------------------------ manifest

    def _info(self, name: str, entry: Mapping[str, Any]) -> TableInfo:
        return TableInfo(
            name=name,
            description=entry["description"],
            partition_by=tuple(entry["partition_by"]),
            schema=dict(entry["schema"]),
            row_count=int(entry["row_count"]),
            updated_at=dt.datetime.fromisoformat(entry["updated_at"]),
            path=self.root / entry["path"],
        )

    def _load(self) -> dict[str, Any]:
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            manifest = json.loads(text)
            tables = manifest["tables"]
            if manifest.get("format") != MANIFEST_FORMAT or not isinstance(tables, dict):
                raise ValueError(f"unknown manifest format {manifest.get('format')!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LakeError(
                f"{self.manifest_path} is unreadable ({exc}): restore it, or move it away and "
                "call LakeRegistry.sync() after writing the tables again"
            ) from None
        return tables

    def _update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        self.root.mkdir(parents=True, exist_ok=True)
        with parquet.file_lock(self.root / MANIFEST_LOCK):
            tables = self._load()
            result = change(tables)
            text = json.dumps(
                {"format": MANIFEST_FORMAT, "tables": tables},
                indent=2,
                sort_keys=True,
                ensure_ascii=False,
            )
            tmp = self.root / f"{MANIFEST}.tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "x", encoding="utf-8") as handle:
                    handle.write(text + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.manifest_path)
            finally:
                tmp.unlink(missing_ok=True)
            parquet.fsync_dir(self.root)
        return result


# ---------------------------------------------------------------------- engines


def _ibis_schema(version: parquet.LakeVersion):
    import ibis

    return ibis.Schema.from_pyarrow(version.schema)


def _duckdb_table(con: BaseBackend, version: parquet.LakeVersion, view: str) -> ir.Table:
    from ibis.backends.sql.datatypes import DuckDBType

    schema = _ibis_schema(version)
    columns = [sg.column(column, quoted=True) for column in schema.names]
    if version.files():
        options = [_option("hive_partitioning", bool(version.partition_by))]
        if version.partition_by:
            hive_types = sge.Struct(
                expressions=[
                    sge.PropertyEQ(
                        this=sg.to_identifier(column, quoted=True),
                        expression=sge.convert(DuckDBType.to_string(schema[column])),
                    )
                    for column in version.partition_by
                ]
            )
            options.append(_option("hive_types", hive_types))
        source = sg.func("read_parquet", sge.convert(version.file_glob), *options)
        query = sg.select(*columns).from_(source)
    else:  # a partitioned table without rows has no files: an empty view of the right types
        casts = [
            sge.cast(sge.null(), DuckDBType.from_ibis(dtype)).as_(column, quoted=True)
            for column, dtype in schema.items()
        ]
        query = sg.select(*casts).where(sge.false())
    create = sge.Create(
        this=sg.to_identifier(view, quoted=True),
        kind="VIEW",
        replace=True,
        expression=query,
        properties=sge.Properties(expressions=[sge.TemporaryProperty()]),
    )
    con.raw_sql(create.sql("duckdb"))
    return con.table(view)


def _option(name: str, value: Any) -> sge.Expression:
    return sge.EQ(this=sg.to_identifier(name), expression=sge.convert(value))


def _pyspark_table(con: BaseBackend, version: parquet.LakeVersion, view: str) -> ir.Table:
    # An explicit schema keeps Spark from guessing partition types ("007" -> 7, "2026-01-02" ->
    # date) and reads the UTC timestamps as TIMESTAMP. Spark skips "."/"_" files by itself; the
    # glob filter also keeps it to part-* files.
    table = con.read_parquet_dir(
        str(version.path),
        table_name=view,
        schema=_ibis_schema(version),
        pathGlobFilter="part-*.parquet",
    )
    return table.select(*version.schema.names)
