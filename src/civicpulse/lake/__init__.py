"""The lake floor: atomic Parquet tables, their registry, and the Ibis engine that reads them.

Plain Python (pyarrow, Ibis, DuckDB; PySpark optional): it imports neither Django nor any other
civicpulse package.
"""

from civicpulse.lake.engine import ENGINES, connect, spark_session
from civicpulse.lake.errors import EngineUnavailable, LakeError
from civicpulse.lake.parquet import (
    DEFAULT_KEEP,
    LakeVersion,
    append_partition,
    current_path,
    current_version,
    read_table,
    validate_table_name,
    write_table,
)
from civicpulse.lake.registry import LakeRegistry, TableInfo

__all__ = [
    "DEFAULT_KEEP",
    "ENGINES",
    "EngineUnavailable",
    "LakeError",
    "LakeRegistry",
    "LakeVersion",
    "TableInfo",
    "append_partition",
    "connect",
    "current_path",
    "current_version",
    "read_table",
    "spark_session",
    "validate_table_name",
    "write_table",
]
