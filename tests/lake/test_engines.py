"""Engines: one Ibis expression, the same answer on DuckDB and Spark; one-line errors."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import socket
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from civicpulse.lake import (
    ENGINES,
    EngineUnavailable,
    LakeRegistry,
    connect,
    current_path,
)
from civicpulse.lake import engine as lake_engine
from tests.support import unavailable

# --------------------------------------------------------------------------- data and expression


def city_requests(n: int = 4000, seed: int = 11) -> pd.DataFrame:
    """Synthetic 311 requests over half a year, with a month column to partition by."""
    rng = np.random.default_rng(seed)
    opened = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 181 * 86400, n), unit="s")
    hours = rng.gamma(2.0, 6.0, n)
    hours[rng.random(n) < 0.05] = np.nan  # still open: no handling time yet
    return pd.DataFrame(
        {
            "opened_at": opened,
            "district": rng.choice(["东城区", "西城区", "Chaoyang", "Haidian"], n),
            "category": rng.choice(["noise", "pothole", "water", "heating"], n),
            "hours": hours,
            "month": opened.strftime("%Y-%m"),
        }
    )


def monthly_summary(t: ibis.Table) -> ibis.Table:
    """The dashboard question: per month and district, how many requests and how long."""
    start = ibis.timestamp(dt.datetime(2026, 2, 10, 6, 30))
    end = ibis.timestamp(dt.datetime(2026, 5, 20))
    recent = t.filter(
        (t.opened_at >= start) & (t.opened_at < end) & (t.category != "heating"),
        t.month != "2026-04",  # a partition filter too
    )
    return recent.group_by(
        month_start=recent.opened_at.truncate("M"), district=recent.district
    ).aggregate(
        requests=recent.count(),
        mean_hours=recent.hours.mean(),
        open_now=recent.hours.isnull().sum(),
        last_opened=recent.opened_at.max(),
    )


def expected_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """The same question answered by pandas, as a referee."""
    start, end = pd.Timestamp("2026-02-10 06:30"), pd.Timestamp("2026-05-20")
    recent = frame[
        (frame.opened_at >= start)
        & (frame.opened_at < end)
        & (frame.category != "heating")
        & (frame.month != "2026-04")
    ]
    grouped = recent.assign(month_start=recent.opened_at.dt.to_period("M").dt.to_timestamp())
    return (
        grouped.groupby(["month_start", "district"])
        .agg(
            requests=("hours", "size"),
            mean_hours=("hours", "mean"),
            open_now=("hours", lambda s: int(s.isna().sum())),
            last_opened=("opened_at", "max"),
        )
        .reset_index()
    )


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as naive UTC nanoseconds and ints as int64, rows sorted."""
    frame = frame.copy()
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(series):
            series = series.astype("datetime64[ns]")
        elif pd.api.types.is_integer_dtype(series):
            series = series.astype("int64")
        frame[column] = series
    return frame.sort_values(["month_start", "district"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakeRegistry, pd.DataFrame]:
    root = tmp_path_factory.mktemp("lake")
    registry = LakeRegistry(root)
    frame = city_requests()
    registry.write("requests", frame, description="311 requests", partition_by=["month"])
    return registry, frame


# --------------------------------------------------------------------------- DuckDB


def test_duckdb_is_the_default_and_several_processes_can_share_a_data_dir(
    tmp_path: Path,
) -> None:
    first = connect(data_dir=tmp_path / "data")
    second = connect(data_dir=tmp_path / "data")  # a file-backed DuckDB would refuse this
    try:
        assert first.name == "duckdb" and second.name == "duckdb"
        assert (tmp_path / "data" / "duckdb-tmp").is_dir()
        assert first.raw_sql("SELECT 41 + 1").fetchone()[0] == 42
    finally:
        first.disconnect()
        second.disconnect()


def test_duckdb_answers_like_pandas(lake, tmp_path: Path) -> None:
    registry, frame = lake
    con = connect("duckdb", data_dir=tmp_path)
    try:
        got = monthly_summary(registry.table(con, "requests")).to_pandas()
    finally:
        con.disconnect()
    expected = expected_summary(frame)
    assert len(expected) == 12  # Feb, Mar, May x 4 districts
    pd.testing.assert_frame_equal(
        comparable(got)[expected.columns], comparable(expected), check_exact=False, rtol=1e-12
    )


# --------------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """An Ibis connection over the process-wide Spark session (local[2])."""
    if importlib.util.find_spec("pyspark") is None:
        unavailable("pyspark is not installed: pip install 'civicpulse[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("Java is not installed: Spark needs Java 17")
    return connect("spark", data_dir=tmp_path_factory.mktemp("spark"), spark_master="local[2]")


@pytest.mark.spark
def test_spark_gives_the_same_answer_as_duckdb(lake, spark, tmp_path: Path) -> None:
    registry, _ = lake
    duck = connect("duckdb", data_dir=tmp_path)
    try:
        on_duckdb = monthly_summary(registry.table(duck, "requests")).to_pandas()
    finally:
        duck.disconnect()
    on_spark = monthly_summary(registry.table(spark, "requests")).to_pandas()

    assert list(on_spark.columns) == list(on_duckdb.columns)
    pd.testing.assert_frame_equal(
        comparable(on_spark), comparable(on_duckdb), check_exact=False, rtol=1e-12
    )


@pytest.mark.spark
def test_spark_reads_types_partitions_and_appends_like_duckdb(spark, tmp_path: Path) -> None:
    registry = LakeRegistry(tmp_path / "lake")
    frame = pd.DataFrame(
        {
            "code": ["007", "110101", "007", "110102"],
            "year": [2025, 2026, 2026, 2026],
            "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 3), dt.date(2026, 1, 2), None],
            "at": pd.to_datetime(
                ["2026-01-02 23:30", None, "2026-01-02 00:15", "2026-01-03 00:00"]
            ),
            "value": [1.5, 2.0, None, 4.0],
        }
    )
    registry.write("codes", frame, description="codes", partition_by=["code", "year"])
    registry.append("codes", frame.head(2))
    partition = next(current_path(registry.root, "codes").glob("code=*/year=*"))
    (partition / ".tmp-0badf00d.parquet").write_bytes(b"PAR1 half")

    table = registry.table(spark, "codes")
    assert table.columns == ("code", "year", "day", "at", "value")
    assert str(table.schema()["code"]) == "string" and str(table.schema()["year"]) == "int64"

    duck = connect("duckdb", data_dir=tmp_path)
    try:
        on_duckdb = registry.table(duck, "codes").order_by(["code", "year", "value"]).to_pandas()
    finally:
        duck.disconnect()
    on_spark = table.order_by(["code", "year", "value"]).to_pandas()
    assert len(on_spark) == 6 and sorted(set(on_spark["code"])) == ["007", "110101", "110102"]
    for frame_ in (on_spark, on_duckdb):
        frame_["at"] = pd.to_datetime(frame_["at"], utc=True)
        frame_["day"] = pd.to_datetime(frame_["day"])
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_dtype=False)


@pytest.mark.spark
def test_spark_session_is_shared_and_sized_for_a_laptop(spark) -> None:
    session = lake_engine.spark_session("local[2]")
    assert lake_engine.spark_session("local[2]") is session  # started once per process
    assert spark.version == session.version
    conf = session.sparkContext.getConf()
    assert conf.get("spark.driver.memory") == "1g"
    assert session.conf.get("spark.sql.shuffle.partitions") == "4"
    assert session.conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.ui.enabled") == "false"
    with pytest.raises(EngineUnavailable, match="already running"):
        lake_engine.spark_session("local[4]")


# --------------------------------------------------------------------------- one-line errors


def test_unknown_engine_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="unknown analytics engine 'postgres'") as error:
        connect("postgres", data_dir=tmp_path)
    message = str(error.value)
    assert all(name in message for name in ENGINES)
    assert "CIVICPULSE_ENGINE" in message and "\n" not in message


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_master_fails_fast(tmp_path: Path) -> None:
    if importlib.util.find_spec("pyspark") is None:
        unavailable("pyspark is not installed: pip install 'civicpulse[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("Java is not installed: Spark needs Java 17")
    master = f"spark://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as error:
        lake_engine.check_spark(master)
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert message == (
        f"Spark master {master} is unreachable (connection refused): check "
        "CIVICPULSE_SPARK_MASTER or use CIVICPULSE_ENGINE=duckdb"
    )


def test_malformed_master_is_named() -> None:
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        unavailable("pyspark and Java are needed to get as far as the master check")
    with pytest.raises(EngineUnavailable, match="is not spark://host:port"):
        lake_engine.check_spark("spark://no-port")


def test_missing_pyspark_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyspark" else real_find_spec(name, *a),
    )
    with pytest.raises(EngineUnavailable, match=r"install civicpulse\[spark\]"):
        lake_engine.check_spark("local[2]")


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if importlib.util.find_spec("pyspark") is None:
        unavailable("pyspark is not installed: pip install 'civicpulse[spark]'")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineUnavailable, match="Java is not installed") as error:
        lake_engine.check_spark("local[2]")
    assert "\n" not in str(error.value)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(EngineUnavailable, match="has no bin/java"):
        lake_engine.check_spark("local[2]")
