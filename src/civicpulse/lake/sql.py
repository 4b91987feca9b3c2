"""What SQL over lake tables needs that bound parameters cannot give: safe identifiers.

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
