"""What SQL over lake tables needs that bound parameters cannot give: safe identifiers, and the
file names of views (a view cannot take a bound parameter).

Values always travel as bound parameters; a column name cannot, so it is quoted here, the one
place that does it (a department's file may name a column ``a"; DROP TABLE x; --``).
"""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier (DuckDB, PostgreSQL, SQLite and Spark SQL
    with ANSI quoting), inner quotes doubled, so any text names a column and nothing else."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"not a usable column name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as an SQL string literal, inner quotes doubled: for the lake's own file names in
    statements that cannot bind them (views, ``COPY ... TO``). Never for user-supplied values."""
    return "'" + str(text).replace("'", "''") + "'"


def parquet_scan(glob: str) -> str:
    """``read_parquet('<glob>')`` for a FROM clause, the file pattern safely quoted."""
    return f"read_parquet({quote_literal(glob)})"
