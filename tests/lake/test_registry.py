"""The lake registry: manifest round trip, reopen, errors, and reading tables through DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import os
import types
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from civicpulse.lake import LakeError, LakeRegistry, TableInfo, connect, current_path, write_table
from civicpulse.lake.registry import MANIFEST


def requests_frame(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opened_at": pd.date_range("2026-01-30", periods=n, freq="12h"),
            "district": [("东城", "西城", "north")[i % 3] for i in range(n)],
            "hours": [float(i) / 2 for i in range(n)],
            "code": [("007", "110101", "007", "110102")[i % 4] for i in range(n)],
        }
    ).assign(month=lambda f: f["opened_at"].dt.strftime("%Y-%m"))


@pytest.fixture
def registry(tmp_path: Path) -> LakeRegistry:
    return LakeRegistry(tmp_path / "lake")


@pytest.fixture
def duck(tmp_path: Path):
    con = connect("duckdb", data_dir=tmp_path / "engine")
    yield con
    con.disconnect()


def test_round_trip(registry: LakeRegistry) -> None:
    frame = requests_frame()
    info = registry.write(
        "requests", frame, description="Citizen requests, one row each", partition_by=["month"]
    )

    assert isinstance(info, TableInfo)
    assert info.name == "requests"
    assert info.description == "Citizen requests, one row each"
    assert info.partition_by == ("month",)
    assert info.schema == {
        "opened_at": "timestamp[us, tz=UTC]",
        "district": "string",
        "hours": "double",
        "code": "string",
        "month": "string",
    }
    assert info.row_count == 12
    assert info.path == current_path(registry.root, "requests")
    assert info.updated_at.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - info.updated_at) < dt.timedelta(minutes=1)
    assert registry.get("requests") == info
    assert "requests" in registry and "posts" not in registry
    assert registry.read("requests").num_rows == 12


def test_manifest_survives_reopen(registry: LakeRegistry) -> None:
    registry.write("requests", requests_frame(), description="requests", partition_by=["month"])
    registry.write("posts", requests_frame(6).drop(columns="month"), description="posts")

    again = LakeRegistry(registry.root)
    assert [info.name for info in again.list()] == ["posts", "requests"]
    assert again.list() == registry.list()
    manifest = json.loads((registry.root / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["tables"]["posts"]["path"].startswith("posts/v-")  # relative: the lake moves


def test_append_updates_the_entry(registry: LakeRegistry) -> None:
    first = registry.write(
        "requests", requests_frame(), description="requests", partition_by=["month"]
    )
    info = registry.append("requests", requests_frame(6))  # partitioning taken from the table
    assert info.row_count == 18
    assert info.description == "requests"
    assert info.path == first.path
    assert info.updated_at >= first.updated_at

    new = registry.append("posts", requests_frame(3), partition_by=["month"], description="p")
    assert (new.row_count, new.partition_by, new.description) == (3, ("month",), "p")


def test_unknown_and_hostile_names(registry: LakeRegistry) -> None:
    with pytest.raises(KeyError, match="'nope' is not registered") as error:
        registry.get("nope")
    assert "LakeRegistry.write" in str(error.value)
    registry.write("requests", requests_frame(), description="r")
    with pytest.raises(KeyError, match="known: requests"):
        registry.get("nope")
    with pytest.raises(KeyError):
        registry.table(connect("duckdb", data_dir=registry.root.parent / "e"), "nope")
    for hostile in ["../requests", "requests/../../x", "Requests", ""]:
        with pytest.raises(LakeError, match="invalid lake table name"):
            registry.get(hostile)
        with pytest.raises(LakeError, match="invalid lake table name"):
            registry.write(hostile, requests_frame(), description="x")
    assert sorted(p.name for p in registry.root.iterdir()) == [
        MANIFEST,
        "_registry.lock",
        "requests",
    ]


def test_manifest_write_is_atomic(registry: LakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.write("requests", requests_frame(), description="r")
    before = (registry.root / MANIFEST).read_bytes()
    real_replace = os.replace

    def crash_on_manifest(src, dst, *args, **kwargs):
        if Path(dst).name == MANIFEST:
            raise OSError("simulated crash")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    with pytest.raises(OSError, match="simulated"):
        registry.write("posts", requests_frame(), description="p")
    monkeypatch.undo()

    assert (registry.root / MANIFEST).read_bytes() == before
    assert not list(registry.root.glob(f"{MANIFEST}.tmp-*"))
    assert [info.name for info in registry.list()] == ["requests"]


def test_corrupted_manifest_is_a_clear_error(registry: LakeRegistry) -> None:
    registry.write("requests", requests_frame(), description="r")
    (registry.root / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(LakeError, match="unreadable") as error:
        registry.list()
    assert "\n" not in str(error.value)


def test_sync_repairs_a_stale_entry(registry: LakeRegistry) -> None:
    registry.write("requests", requests_frame(), description="r")
    newer = write_table(registry.root, "requests", requests_frame(6))  # behind the registry's back
    assert registry.get("requests").path != newer
    [info] = registry.sync()
    assert (info.path, info.row_count, info.description) == (newer, 6, "r")


def test_duckdb_reads_the_current_version(registry: LakeRegistry, duck) -> None:
    registry.write("requests", requests_frame(), description="r", partition_by=["month", "code"])
    table = registry.table(duck, "requests")

    # written order and written types, also for partition columns ("007" stays a string)
    assert table.schema() == ibis.schema(
        {
            "opened_at": "timestamp('UTC', 6)",
            "district": "string",
            "hours": "float64",
            "code": "string",
            "month": "string",
        }
    )
    frame = table.to_pandas()
    assert len(frame) == 12
    assert sorted(frame["code"].unique()) == ["007", "110101", "110102"]
    assert duck.table("lake_requests").count().execute() == 12  # a named view for raw SQL too

    # appends show up, half-written files never do
    version = registry.get("requests").path
    garbage = next(version.glob("month=*/code=*"))
    (garbage / ".tmp-feedface.parquet").write_bytes(b"PAR1 not a parquet file")
    registry.append("requests", requests_frame(4))
    assert table.count().execute() == 16

    # a new version replaces the view on the next table() call
    registry.write("requests", requests_frame(3), description="r", partition_by=["month", "code"])
    assert registry.table(duck, "requests").count().execute() == 3


def test_duckdb_empty_partitioned_table(registry: LakeRegistry, duck) -> None:
    empty = pa.table(
        {
            "posted_at": pa.array([], pa.timestamp("us")),
            "text": pa.array([], pa.string()),
            "day": pa.array([], pa.date32()),
        }
    )
    info = registry.write("posts", empty, description="none yet", partition_by=["day"])
    assert info.row_count == 0
    table = registry.table(duck, "posts")
    assert table.schema() == ibis.schema(
        {"posted_at": "timestamp('UTC', 6)", "text": "string", "day": "date"}
    )
    assert table.count().execute() == 0


def test_other_backends_are_refused(registry: LakeRegistry) -> None:
    registry.write("requests", requests_frame(), description="r")
    with pytest.raises(LakeError, match="DuckDB or PySpark, not sqlite"):
        registry.table(types.SimpleNamespace(name="sqlite"), "requests")
