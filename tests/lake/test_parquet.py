"""Atomic Parquet I/O: versions, the pointer switch, crashes, retention, appends, hostile input."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from civicpulse.lake import (
    LakeError,
    append_partition,
    current_path,
    current_version,
    read_table,
    write_table,
)
from civicpulse.lake.parquet import POINTER
from tests.support import REPO_ROOT

HOSTILE_NAMES = [
    "../evil",
    "..",
    "a/b",
    "/etc",
    "a\\b",
    "Requests",
    "",
    "1st",
    "a-b",
    "a.b",
    "posts\n",
    "x" * 64,
    None,
]


def posts(n: int = 40, start: str = "2026-01-01", seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    opened = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 60 * 86400, n), unit="s")
    frame = pd.DataFrame(
        {
            "posted_at": opened,
            "district": rng.choice(["东城", "西城", "north"], n),
            "score": rng.normal(size=n),
        }
    )
    frame["day"] = frame["posted_at"].dt.strftime("%Y-%m-%d")
    return frame


def assert_rows(table: pa.Table, frame: pd.DataFrame) -> None:
    """``table`` holds exactly the rows of ``frame`` (zone-less timestamps read back as UTC)."""
    expected = frame.assign(posted_at=frame["posted_at"].dt.tz_localize("UTC"))
    got = table.to_pandas()
    assert list(got.columns) == list(expected.columns)
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(
        got.sort_values(columns).reset_index(drop=True),
        expected.sort_values(columns).reset_index(drop=True),
        check_dtype=False,
    )


def file_digests(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# --------------------------------------------------------------------------- writing versions


def test_write_makes_a_version_and_points_at_it(tmp_path: Path) -> None:
    frame = posts()
    path = write_table(tmp_path, "posts", frame, partition_by=["day"])

    assert path.parent == tmp_path / "posts"
    assert path.name.startswith("v-")
    assert (tmp_path / "posts" / POINTER).read_text().strip() == path.name
    assert current_path(tmp_path, "posts") == path
    first_day = sorted(frame["day"])[0]
    assert (path / f"day={first_day}" / "part-0.parquet").is_file()

    back = read_table(tmp_path, "posts")
    assert back.column_names == ["posted_at", "district", "score", "day"]
    assert back.schema.field("posted_at").type == pa.timestamp("us", tz="UTC")
    assert_rows(back, frame)


def test_unpartitioned_table_and_missing_table(tmp_path: Path) -> None:
    assert current_path(tmp_path, "posts") is None
    with pytest.raises(LakeError, match="does not exist"):
        read_table(tmp_path, "posts")
    path = write_table(tmp_path, "posts", posts(5))
    assert [p.name for p in path.glob("*.parquet")] == ["part-0.parquet"]
    assert read_table(tmp_path, "posts").num_rows == 5


def test_values_are_normalised_for_every_engine(tmp_path: Path) -> None:
    shanghai = pd.Timestamp("2026-03-01 08:00:00.123456789", tz="Asia/Shanghai")
    frame = pd.DataFrame(
        {
            "naive": [pd.Timestamp("2026-03-01 00:00:00")],
            "aware": [shanghai],
            "count": np.array([7], dtype="uint32"),
            "kind": pd.Categorical(["pothole"]),
        }
    )
    write_table(tmp_path, "mixed", frame)
    back = read_table(tmp_path, "mixed")

    assert back.schema == pa.schema(
        [
            ("naive", pa.timestamp("us", tz="UTC")),
            ("aware", pa.timestamp("us", tz="UTC")),
            ("count", pa.int64()),
            ("kind", pa.string()),
        ]
    )
    row = back.to_pylist()[0]
    assert row["naive"] == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # zone-less means UTC
    assert row["aware"] == dt.datetime(2026, 3, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)  # same instant
    assert row["count"] == 7 and row["kind"] == "pothole"


def test_new_version_switches_and_keeps_the_old_one(tmp_path: Path) -> None:
    first = write_table(tmp_path, "posts", posts(seed=1), partition_by=["day"])
    second = write_table(tmp_path, "posts", posts(seed=2), partition_by=["day"])

    assert second != first and second.name > first.name
    assert current_path(tmp_path, "posts") == second
    assert first.is_dir()  # still there for readers that started before the switch
    assert_rows(read_table(tmp_path, "posts"), posts(seed=2))


def test_retention_keeps_the_last_n_versions(tmp_path: Path) -> None:
    paths = [write_table(tmp_path, "posts", posts(seed=i), keep=2) for i in range(4)]
    versions = sorted(p.name for p in (tmp_path / "posts").glob("v-*"))
    assert versions == [paths[2].name, paths[3].name]
    assert current_path(tmp_path, "posts") == paths[3]

    write_table(tmp_path, "posts", posts(seed=9))  # default keep=3
    assert len(list((tmp_path / "posts").glob("v-*"))) == 3

    with pytest.raises(LakeError, match="keep must be"):
        write_table(tmp_path, "posts", posts(), keep=0)


# --------------------------------------------------------------------------- crashes


def test_failed_pointer_switch_leaves_previous_version_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_table(tmp_path, "posts", posts(seed=1), partition_by=["day"])
    before = read_table(tmp_path, "posts")
    digests = file_digests(first)
    real_replace = os.replace

    def crash_on_pointer(src, dst, *args, **kwargs):
        if Path(dst).name == POINTER:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", crash_on_pointer)
    with pytest.raises(OSError, match="simulated"):
        write_table(tmp_path, "posts", posts(seed=2), partition_by=["day"])
    monkeypatch.undo()

    assert current_path(tmp_path, "posts") == first
    assert read_table(tmp_path, "posts").equals(before)
    assert file_digests(first) == digests
    assert not list((tmp_path / "posts").glob(f"{POINTER}.tmp-*"))

    # The next write works and clears what the failed one left behind.
    third = write_table(tmp_path, "posts", posts(seed=3), partition_by=["day"])
    assert current_path(tmp_path, "posts") == third


CRASHING_WRITER = """
import os, sys
from pathlib import Path
import numpy as np, pandas as pd
from civicpulse.lake import parquet

root, mode = Path(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(5)
frame = pd.DataFrame({"day": [f"2026-01-{d:02d}" for d in rng.integers(1, 29, 500)],
                      "score": rng.normal(size=500)})
if mode == "files":  # die for real (no cleanup, no finally) half-way through the data files
    real, calls = parquet._write_file, []
    def write_then_die(table, path):
        calls.append(path)
        if len(calls) == 3:
            with open(path, "wb") as handle:
                handle.write(b"PAR1 half a file")
            os._exit(9)
        real(table, path)
    parquet._write_file = write_then_die
else:  # die at the pointer switch, after the new version is complete
    real_replace = os.replace
    def replace_or_die(src, dst):
        if Path(dst).name == "_CURRENT":
            os._exit(9)
        real_replace(src, dst)
    os.replace = replace_or_die
parquet.write_table(root, "posts", frame, partition_by=["day"])
"""


@pytest.mark.parametrize("mode", ["files", "pointer"])
def test_killed_writer_leaves_previous_version_intact(tmp_path: Path, mode: str) -> None:
    first = write_table(tmp_path, "posts", posts(seed=1), partition_by=["day"])
    before = read_table(tmp_path, "posts")
    digests = file_digests(first)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_WRITER), str(tmp_path), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 9, result.stderr

    leftovers = [p.name for p in (tmp_path / "posts").iterdir() if p != first]
    if mode == "files":
        assert any(name.startswith(".staging-") for name in leftovers)
    else:
        assert sum(name.startswith("v-") for name in leftovers) == 1  # complete, never current
    assert current_path(tmp_path, "posts") == first
    assert read_table(tmp_path, "posts").equals(before)
    assert file_digests(first) == digests

    latest = write_table(tmp_path, "posts", posts(seed=4), partition_by=["day"])
    assert current_path(tmp_path, "posts") == latest
    assert not list((tmp_path / "posts").glob(".staging-*"))


def test_corrupted_pointer_is_a_clear_error(tmp_path: Path) -> None:
    write_table(tmp_path, "posts", posts())
    (tmp_path / "posts" / POINTER).write_text("../../etc\n")
    with pytest.raises(LakeError, match="corrupted") as error:
        read_table(tmp_path, "posts")
    assert "\n" not in str(error.value)

    (tmp_path / "posts" / POINTER).write_text("v-20260101T000000000000Z-deadbeef\n")
    with pytest.raises(LakeError, match="missing"):
        current_path(tmp_path, "posts")


# --------------------------------------------------------------------------- appends


def test_append_adds_files_without_touching_existing_ones(tmp_path: Path) -> None:
    version = write_table(tmp_path, "posts", posts(30, seed=1), partition_by=["day"])
    digests = file_digests(version)
    old_day = sorted(posts(30, seed=1)["day"])[0]
    extra = posts(6, seed=2)
    extra["day"] = [old_day] * 3 + ["2027-01-01"] * 3

    written = append_partition(tmp_path, "posts", extra, partition_by=["day"])

    assert current_path(tmp_path, "posts") == version  # same version, more files
    assert sorted(p.parent.name for p in written) == [f"day={old_day}", "day=2027-01-01"]
    assert all(p.name.startswith("part-") and p.parent.parent == version for p in written)
    after = file_digests(version)
    assert {k: v for k, v in after.items() if k in digests} == digests
    assert len(after) == len(digests) + 2

    back = read_table(tmp_path, "posts")
    assert back.num_rows == 36
    assert current_version(tmp_path, "posts").row_count() == 36
    assert_rows(back, pd.concat([posts(30, seed=1), extra], ignore_index=True))


def test_append_creates_a_missing_table(tmp_path: Path) -> None:
    written = append_partition(tmp_path, "posts", posts(10), partition_by=["day"])
    assert written and all(p.is_file() for p in written)
    assert read_table(tmp_path, "posts").num_rows == 10
    assert current_version(tmp_path, "posts").partition_by == ("day",)
    assert append_partition(tmp_path, "posts", posts(10).head(0), partition_by=["day"]) == []


def test_append_must_match_the_table(tmp_path: Path) -> None:
    write_table(tmp_path, "posts", posts(10), partition_by=["day"])
    with pytest.raises(LakeError, match="partitioned by"):
        append_partition(tmp_path, "posts", posts(3), partition_by=["district"])
    with pytest.raises(LakeError, match="missing: score"):
        append_partition(tmp_path, "posts", posts(3).drop(columns="score"), partition_by=["day"])
    with pytest.raises(LakeError, match="'score'"):
        append_partition(tmp_path, "posts", posts(3).assign(score="high"), partition_by=["day"])
    # a lossless cast is fine: float32 scores go into the float64 column
    append_partition(tmp_path, "posts", posts(3).astype({"score": "float32"}), partition_by=["day"])
    assert read_table(tmp_path, "posts").num_rows == 13


def test_failed_append_leaves_no_visible_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = write_table(tmp_path, "posts", posts(10), partition_by=["day"])
    digests = file_digests(version)

    def refuse(src, dst, *args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="simulated"):
        append_partition(tmp_path, "posts", posts(5, seed=3), partition_by=["day"])
    monkeypatch.undo()

    assert read_table(tmp_path, "posts").num_rows == 10
    assert {k: v for k, v in file_digests(version).items() if k in digests} == digests
    assert not list(version.rglob(".tmp-*"))


def test_tmp_leftovers_are_ignored(tmp_path: Path) -> None:
    version = write_table(tmp_path, "posts", posts(10), partition_by=["day"])
    partition = next(version.glob("day=*"))
    (partition / ".tmp-0123abcd.parquet").write_bytes(b"PAR1 a half-written file")
    (version / ".tmp-0123abcd.parquet").write_bytes(b"junk")
    assert read_table(tmp_path, "posts").num_rows == 10
    assert len(current_version(tmp_path, "posts").files()) == len(list(version.glob("day=*")))


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_names_are_refused(tmp_path: Path, name: object) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    for call in (
        lambda: write_table(root, name, posts(3)),
        lambda: append_partition(root, name, posts(3), partition_by=["day"]),
        lambda: read_table(root, name),
        lambda: current_path(root, name),
    ):
        with pytest.raises(LakeError, match="invalid lake table name"):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("value", ["../../etc", "a/b", "", " padded", "100%", "x=y", "a:b"])
def test_hostile_partition_values_are_refused(tmp_path: Path, value: str) -> None:
    first = write_table(tmp_path, "posts", posts(5), partition_by=["day"])
    frame = posts(5).assign(day=value)
    with pytest.raises(LakeError, match="cannot name a directory"):
        write_table(tmp_path, "posts", frame, partition_by=["day"])
    with pytest.raises(LakeError, match="cannot name a directory"):
        append_partition(tmp_path, "posts", frame, partition_by=["day"])
    assert current_path(tmp_path, "posts") == first
    assert read_table(tmp_path, "posts").num_rows == 5
    assert [p.name for p in tmp_path.iterdir()] == ["posts"]


def test_bad_partitioning_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="empty in 1 rows"):
        write_table(tmp_path, "posts", posts(3).assign(day=["a", None, "b"]), partition_by=["day"])
    with pytest.raises(LakeError, match="not in the data"):
        write_table(tmp_path, "posts", posts(3), partition_by=["month"])
    with pytest.raises(LakeError, match="partition by a string, integer or date"):
        write_table(tmp_path, "posts", posts(3), partition_by=["score"])
    with pytest.raises(LakeError, match="pyarrow Table or a pandas DataFrame"):
        write_table(tmp_path, "posts", [{"a": 1}])
    with pytest.raises(LakeError, match="differ only in case"):
        write_table(tmp_path, "posts", pd.DataFrame({"Day": [1], "day": [2]}))
    assert current_path(tmp_path, "posts") is None


def test_partition_types_survive(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "code": ["007", "110101", "007"],
            "year": [2025, 2026, 2026],
            "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 3), dt.date(2026, 1, 2)],
            "value": [1.0, 2.0, 3.0],
        }
    )
    version = write_table(tmp_path, "codes", frame, partition_by=["code", "year", "day"])
    assert (version / "code=007" / "year=2026" / "day=2026-01-02" / "part-0.parquet").is_file()
    back = read_table(tmp_path, "codes")
    assert back.schema.field("code").type == pa.string()
    assert back.schema.field("year").type == pa.int64()
    assert back.schema.field("day").type == pa.date32()
    assert sorted(back.column("code").to_pylist()) == ["007", "007", "110101"]
