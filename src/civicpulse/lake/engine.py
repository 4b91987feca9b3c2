"""The analytics engine: one Ibis connection, DuckDB by default or PySpark for scale-out.

``connect("duckdb", data_dir=...)`` opens an in-process DuckDB that spills to
``data_dir/duckdb-tmp``. It holds no tables of its own (lake tables are views over Parquet),
and a database file would admit only one process at a time: the web server, the CLI and every
worker could not share it. ``connect("spark", data_dir=..., spark_master=...)`` wraps the
process-wide Spark session of :func:`spark_session`, started once and then reused: a JVM takes
7-10 s to start. Before starting Spark the cheap things are checked (pyspark importable, Java
present, a ``spark://`` master accepting TCP) so that a missing piece is a one-line
:class:`~civicpulse.lake.errors.EngineUnavailable` instead of a Java stack trace.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis

from civicpulse.lake.errors import EngineUnavailable

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

__all__ = ["ENGINES", "check_spark", "connect", "spark_session"]

ENGINES = ("duckdb", "spark")
DUCKDB_SPILL_DIR = "duckdb-tmp"
MASTER_TIMEOUT_SECONDS = 3.0
_FIX = "use CIVICPULSE_ENGINE=duckdb"

_spark_lock = threading.Lock()
_spark: Any = None  # the process-wide SparkSession
_spark_master: str | None = None


def connect(
    engine: str = "duckdb", *, data_dir: Path, spark_master: str = "local[2]"
) -> BaseBackend:
    """An Ibis backend for ``engine`` ("duckdb" or "spark")."""
    name = engine.strip().lower() if isinstance(engine, str) else engine
    if name == "duckdb":
        spill = Path(data_dir) / DUCKDB_SPILL_DIR
        spill.mkdir(parents=True, exist_ok=True)
        return ibis.duckdb.connect(temp_directory=str(spill))
    if name == "spark":
        warehouse = Path(data_dir) / "spark-warehouse"  # else Spark litters the working dir
        return ibis.pyspark.connect(spark_session(spark_master, warehouse_dir=warehouse))
    raise EngineUnavailable(
        f"unknown analytics engine {engine!r}: set CIVICPULSE_ENGINE to one of {', '.join(ENGINES)}"
    )


def spark_session(
    master: str = "local[2]", *, driver_memory: str = "1g", warehouse_dir: Path | None = None
) -> Any:
    """The process-wide SparkSession, started on first use with settings fit for a small machine.

    ``driver_memory`` and ``warehouse_dir`` only count when the session is started (the first
    call in the process).

    Raises :class:`EngineUnavailable` if pyspark or Java is missing, if a ``spark://`` master does
    not accept connections within a few seconds, if Spark fails to start, or if a session for
    another master is already running in this process.
    """
    global _spark, _spark_master
    with _spark_lock:
        if _spark is not None and _is_alive(_spark):
            if master != _spark_master:
                raise EngineUnavailable(
                    f"a Spark session for {_spark_master} is already running in this process, so "
                    f"{master} cannot be used: run one master per process"
                )
            return _spark
        check_spark(master)
        if master.startswith("local"):
            # The driver and executors share this machine: keep Spark off the network.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark.sql import SparkSession

        builder = (
            SparkSession.builder.master(master)
            .appName("civicpulse")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        if warehouse_dir is not None:
            builder = builder.config("spark.sql.warehouse.dir", str(Path(warehouse_dir).resolve()))
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # pyspark raises several unrelated types here
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise EngineUnavailable(
                f"Spark failed to start with master {master} ({detail}): check Java, "
                f"CIVICPULSE_SPARK_MASTER and the Spark logs, or {_FIX}"
            ) from exc
        session.sparkContext.setLogLevel("WARN")
        _spark, _spark_master = session, master
        return session


def check_spark(master: str) -> None:
    """Raise :class:`EngineUnavailable` if Spark clearly cannot start for ``master``."""
    if importlib.util.find_spec("pyspark") is None:
        raise EngineUnavailable(
            f"PySpark is not installed: install civicpulse[spark] (pip install "
            f"'civicpulse[spark]') or {_FIX}"
        )
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = Path(java_home) / "bin" / ("java.exe" if os.name == "nt" else "java")
        if not java.is_file():
            raise EngineUnavailable(
                f"JAVA_HOME={java_home} has no bin/java: point JAVA_HOME at a Java 17 "
                f"installation or unset it, or {_FIX}"
            )
    elif shutil.which("java") is None:
        raise EngineUnavailable(
            "Java is not installed (no java on PATH, JAVA_HOME unset): install Java 17 "
            f"(e.g. apt-get install openjdk-17-jre-headless) or {_FIX}"
        )
    if master.startswith("spark://"):
        _check_master_reachable(master)


def _check_master_reachable(master: str) -> None:
    # spark://host:port, or spark://h1:p1,h2:p2 for standby masters: one reachable is enough.
    reasons = []
    for address in master.removeprefix("spark://").split(","):
        host, sep, port_text = address.strip().rpartition(":")
        host = host.strip("[]")  # [::1]:7077
        if not sep or not host or not port_text.isdigit():
            raise EngineUnavailable(
                f"Spark master {master} is not spark://host:port: fix CIVICPULSE_SPARK_MASTER"
            )
        try:
            with socket.create_connection((host, int(port_text)), timeout=MASTER_TIMEOUT_SECONDS):
                return
        except TimeoutError:
            reasons.append(f"no answer within {MASTER_TIMEOUT_SECONDS:g} s")
        except ConnectionRefusedError:
            reasons.append("connection refused")
        except OSError as exc:
            reasons.append(exc.strerror or type(exc).__name__)
    raise EngineUnavailable(
        f"Spark master {master} is unreachable ({'; '.join(reasons)}): check "
        f"CIVICPULSE_SPARK_MASTER or {_FIX}"
    )


def _is_alive(session: Any) -> bool:
    try:
        return session.sparkContext._jsc is not None
    except Exception:
        return False
