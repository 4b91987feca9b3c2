"""Comparing two versions of a dataset: which rows and columns came, went or changed.

The comparison runs in DuckDB over the two versions' Parquet files, never row by row in Python,
so it costs about two scans whatever the size.

Rows are matched in one of two ways:

* by **key** columns (``key=["id"]``): a key only in the new version is a row added, only in the
  old one a row removed, in both with any other shared column different a row changed. Keys must
  be unique and non-empty in both versions (else the matching means nothing, and it says so).
* without a key, by **whole-row identity** over the shared columns: a row the new version holds
  more times than the old one is added, fewer times removed (duplicates count). Nothing can be
  "changed" without a key: an edited row shows as one removed and one added.

Columns are compared by name: added, removed, or the same name with another type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from civicpulse.catalog.models import DatasetVersion
from civicpulse.lake.sql import parquet_scan
from civicpulse.lake.sql import quote_identifier as _q

__all__ = ["CompareFailed", "Comparison", "compare"]


class CompareFailed(Exception):
    """The versions cannot be compared as asked (bad key); one line saying why."""


@dataclass(frozen=True)
class Comparison:
    old: int  # version numbers
    new: int
    key: tuple[str, ...]
    rows_added: int
    rows_removed: int
    rows_changed: int
    rows_unchanged: int
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    columns_retyped: list[tuple[str, str, str]] = field(default_factory=list)  # name, old, new
    changed_by_column: dict[str, int] = field(default_factory=dict)  # keyed only

    @property
    def identical(self) -> bool:
        return not (
            self.rows_added
            or self.rows_removed
            or self.rows_changed
            or self.columns_added
            or self.columns_removed
            or self.columns_retyped
        )

    def summary(self) -> str:
        lines = [
            f"version {self.old} -> {self.new}"
            + (f" (rows matched by {', '.join(self.key)})" if self.key else " (whole rows)"),
            f"rows: {self.rows_added} added, {self.rows_removed} removed, "
            f"{self.rows_changed} changed, {self.rows_unchanged} unchanged",
            f"columns added: {', '.join(self.columns_added) or '-'}",
            f"columns removed: {', '.join(self.columns_removed) or '-'}",
            "columns retyped: "
            + (", ".join(f"{n} {a} -> {b}" for n, a, b in self.columns_retyped) or "-"),
        ]
        if self.changed_by_column:
            lines.append(
                "changed values by column: "
                + ", ".join(f"{n} {c}" for n, c in self.changed_by_column.items() if c)
            )
        return "\n".join(lines)



def compare(
    old: DatasetVersion, new: DatasetVersion, key: Sequence[str] | None = None
) -> Comparison:
    """What changed from ``old`` to ``new`` (two versions of one dataset)."""
    if old.dataset_id != new.dataset_id:
        raise CompareFailed(
            f"{old} and {new} belong to different datasets: compare versions of one dataset"
        )
    for version in (old, new):
        if version.status == DatasetVersion.Status.DELETED:
            raise CompareFailed(f"{version} was deleted: its data is gone")
    old_types = {c["name"]: c["type"] for c in old.schema}
    new_types = {c["name"]: c["type"] for c in new.schema}
    shared = [name for name in old_types if name in new_types]
    added = [name for name in new_types if name not in old_types]
    removed = [name for name in old_types if name not in new_types]
    retyped = [(n, old_types[n], new_types[n]) for n in shared if old_types[n] != new_types[n]]
    key = tuple(key or ())
    missing = [k for k in key if k not in shared]
    if missing:
        raise CompareFailed(
            f"key column(s) {', '.join(missing)} are not in both versions "
            f"(shared columns: {', '.join(shared) or 'none'})"
        )
    if not shared:
        raise CompareFailed(f"{old} and {new} share no column: nothing to match rows by")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TEMP VIEW v_old AS SELECT * FROM {parquet_scan(old.data_glob())}")
        con.execute(f"CREATE TEMP VIEW v_new AS SELECT * FROM {parquet_scan(new.data_glob())}")
        # Retyped columns are compared by their text, so 7 and '7' are the same value.
        values = {
            n: (f"CAST({_q(n)} AS VARCHAR)" if n in {r[0] for r in retyped} else _q(n))
            for n in shared
        }
        if key:
            counts = _keyed(con, key, [n for n in shared if n not in key], values, old, new)
            added_rows, removed_rows, changed, unchanged, by_column = counts
        else:
            added_rows, removed_rows, unchanged = _whole_rows(con, shared, values)
            changed, by_column = 0, {}
    finally:
        con.close()
    return Comparison(
        old=old.number,
        new=new.number,
        key=key,
        rows_added=added_rows,
        rows_removed=removed_rows,
        rows_changed=changed,
        rows_unchanged=unchanged,
        columns_added=added,
        columns_removed=removed,
        columns_retyped=retyped,
        changed_by_column=by_column,
    )


def _keyed(con, key, others, values, old, new):
    keys = ", ".join(f"{values[k]} AS {_q(k)}" for k in key)
    for view, version in (("v_old", old), ("v_new", new)):
        nulls = " OR ".join(f"{_q(k)} IS NULL" for k in key)
        distinct = ", ".join(_q(k) for k in key)
        empty, dupes = con.execute(
            f"SELECT count(*) FILTER (WHERE {nulls}), "
            f"count(*) - (SELECT count(*) FROM (SELECT DISTINCT {distinct} FROM {view})) "
            f"FROM {view}"
        ).fetchone()
        if empty or dupes:
            raise CompareFailed(
                f"key {', '.join(key)} does not identify the rows of {version}: "
                f"{empty} rows without a key, {dupes} repeated keys; choose other key columns"
            )
    others_a = ", ".join(f"{values[n]} AS {_q(n)}" for n in others)
    select_a = f"SELECT {keys}{', ' + others_a if others else ''} FROM v_old"
    select_b = select_a.replace(" FROM v_old", " FROM v_new")
    join = " AND ".join(f"a.{_q(k)} = b.{_q(k)}" for k in key)
    differs = {n: f"a.{_q(n)} IS DISTINCT FROM b.{_q(n)}" for n in others}
    any_diff = " OR ".join(differs.values()) or "false"
    per_column = "".join(
        f", count(*) FILTER (WHERE a.{_q(key[0])} IS NOT NULL AND b.{_q(key[0])} IS NOT NULL "
        f"AND ({cond}))"
        for cond in differs.values()
    )
    row = con.execute(
        f"""
        WITH a AS ({select_a}), b AS ({select_b})
        SELECT
            count(*) FILTER (WHERE a.{_q(key[0])} IS NULL),
            count(*) FILTER (WHERE b.{_q(key[0])} IS NULL),
            count(*) FILTER (WHERE a.{_q(key[0])} IS NOT NULL AND b.{_q(key[0])} IS NOT NULL
                             AND ({any_diff})),
            count(*) FILTER (WHERE a.{_q(key[0])} IS NOT NULL AND b.{_q(key[0])} IS NOT NULL
                             AND NOT ({any_diff}))
            {per_column}
        FROM a FULL OUTER JOIN b ON {join}
        """
    ).fetchone()
    by_column = {n: int(c) for n, c in zip(others, row[4:], strict=True)}
    return int(row[0]), int(row[1]), int(row[2]), int(row[3]), by_column


def _whole_rows(con, shared, values):
    """Multiset difference: EXCEPT ALL / INTERSECT ALL treat nulls as equal and count repeats."""
    columns = ", ".join(f"{values[n]} AS {_q(n)}" for n in shared)
    a, b = f"SELECT {columns} FROM v_old", f"SELECT {columns} FROM v_new"
    row = con.execute(
        f"""
        SELECT
            (SELECT count(*) FROM ({b} EXCEPT ALL {a})),
            (SELECT count(*) FROM ({a} EXCEPT ALL {b})),
            (SELECT count(*) FROM ({a} INTERSECT ALL {b}))
        """
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])
