"""Versions: a failed load changes nothing, versions cannot be edited, and compare counts edits."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from civicpulse.catalog import services
from civicpulse.catalog.models import DatasetColumn, DatasetVersion, ImmutableRecord
from tests.support import shared_data

pytestmark = pytest.mark.shared_data

ATLAS = "311/nyc_311_2019-12-31_atlas.csv"
BOSTON = "311/boston_311_qsv_100.csv"


def _load(dataset, source, **options):
    return services.load_version(dataset, source, user=None, progress=False, **options)


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, header, rows, encoding="utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _ragged(tmp_path, header, rows):
    bad = [list(r) for r in rows]
    bad[40] = [*bad[40], "one field too many"]
    return _write(tmp_path / "ragged.csv", header, bad)


def _latin1_late(tmp_path, header, rows):
    path = _write(tmp_path / "latin1.csv", header, rows)
    with open(path, "ab") as handle:
        handle.write(
            ",".join(rows[0]).replace(rows[0][0], "x", 1).encode() + "é\n".encode("latin-1")
        )
    return path


def _latin1_in_chinese(tmp_path, header, rows):
    text = shared_data("zh/waimai_10k.csv").read_text(encoding="utf-8").splitlines()[:201]
    path = tmp_path / "zh.csv"
    path.write_bytes(("\n".join(text) + "\n").encode() + "1,caf\xe9\n".encode("latin-1"))
    return path


def _open_quote(tmp_path, header, rows):
    text = _write(tmp_path / "q.csv", header, rows).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    lines[30] = '"' + lines[30]
    (tmp_path / "quote.csv").write_text("".join(lines), encoding="utf-8")
    return tmp_path / "quote.csv"


def _empty(tmp_path, header, rows):
    (tmp_path / "empty.csv").write_bytes(b"")
    return tmp_path / "empty.csv"


def _header_only(tmp_path, header, rows):
    return _write(tmp_path / "header.csv", header, [])


def _cut_gzip(tmp_path, header, rows):
    whole = gzip.compress(_write(tmp_path / "g.csv", header, rows * 20).read_bytes())
    (tmp_path / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    return tmp_path / "cut.csv.gz"


def _not_parquet(tmp_path, header, rows):
    (tmp_path / "fake.parquet").write_bytes(b"PAR1 this is not parquet at all")
    return tmp_path / "fake.parquet"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_ragged, r"ragged\.csv: line 42 has 30 fields, the header has 29"),
        (_latin1_late, r"latin1\.csv: line 102 is not utf-8 or gb18030 text \(byte 0xe9\)"),
        (_latin1_in_chinese, r"zh\.csv: line 202 is not utf-8 text"),
        (_open_quote, r"quote\.csv: line \d+"),
        (_empty, r"empty\.csv: is empty"),
        (_header_only, r"header\.csv: has a header but no rows"),
        (_cut_gzip, r"cut\.csv\.gz: "),
        (_not_parquet, r"fake\.parquet: not readable as Parquet"),
    ],
)
def test_a_failed_load_keeps_the_previous_version_current_and_readable(
    new_dataset, tmp_path, make, message
):
    header, rows = _rows(shared_data(BOSTON))
    dataset = new_dataset("fail")
    first = _load(dataset, shared_data(BOSTON))
    bad = make(tmp_path, header, rows)
    with pytest.raises(services.LoadFailed, match=message):
        _load(dataset, bad)
    dataset.refresh_from_db()
    assert dataset.current_version == first
    assert services.versions_of(dataset).count() == 1
    first.refresh_from_db()
    assert first.status == "current"
    assert services.current_table(dataset).read().num_rows == len(rows)
    left = sorted(p.name for p in first.lake_dir().parent.iterdir() if not p.name.startswith("_"))
    assert left == [first.lake_dir().name]  # no staging or half-written version


def test_a_version_cannot_be_edited_or_deleted_but_its_status_can_move(new_dataset):
    dataset = new_dataset("frozen")
    version = _load(dataset, shared_data(BOSTON))
    version.row_count = 5
    with pytest.raises(ImmutableRecord, match="row_count cannot change"):
        version.save()
    version.refresh_from_db()
    with pytest.raises(ImmutableRecord, match="checksum"):
        DatasetVersion.objects.filter(pk=version.pk).update(checksum="0" * 64)
    with pytest.raises(ImmutableRecord):
        version.delete()
    with pytest.raises(ImmutableRecord):
        DatasetVersion.objects.filter(pk=version.pk).delete()
    column = version.columns.first()
    column.null_count += 1
    with pytest.raises(ImmutableRecord, match="null_count"):
        column.save()
    column.refresh_from_db()
    column.personal_tags = ["name"]
    column.save()  # tags are annotations, not the recorded profile
    assert DatasetColumn.objects.get(pk=column.pk).personal_tags == ["name"]
    version.status = DatasetVersion.Status.ARCHIVED
    version.save()
    assert DatasetVersion.objects.get(pk=version.pk).status == "archived"
    assert DatasetVersion.objects.get(pk=version.pk).row_count == 100


def test_a_new_version_supersedes_the_old_one_which_stays_readable(new_dataset, tmp_path):
    header, rows = _rows(shared_data(ATLAS))
    dataset = new_dataset("two")
    first = _load(dataset, shared_data(ATLAS))
    second = _load(dataset, _write(tmp_path / "fewer.csv", header, rows[:900]))
    first.refresh_from_db()
    assert (first.status, second.status, second.number) == ("superseded", "current", 2)
    assert services.current_table(dataset).read().num_rows == 900
    from civicpulse.lake import LakeVersion

    assert LakeVersion.open(first.lake_dir()).read().num_rows == len(rows)


def test_compare_counts_the_edits_made_between_two_real_versions(new_dataset, tmp_path):
    header, rows = _rows(shared_data(ATLAS))
    dataset = new_dataset("cmp")
    old = _load(dataset, shared_data(ATLAS))
    key = header.index("unique_key")
    status = header.index("status")
    edited = [list(r) for r in rows]
    removed = {edited[i][key] for i in (3, 500, 998)}
    edited = [r for r in edited if r[key] not in removed]
    changed = 0
    for r in edited[10:14]:
        r[status] = "Reopened" if r[status] != "Reopened" else "Closed"
        changed += 1
    new_rows = []
    for n, template in enumerate(edited[:2]):
        row = list(template)
        row[key] = str(90000000 + n)
        new_rows.append(row)
    edited += new_rows
    # a column dropped and one added
    drop = header.index("landmark")
    new_header = [h for i, h in enumerate(header) if i != drop] + ["checked"]
    edited = [[v for i, v in enumerate(r) if i != drop] + ["yes"] for r in edited]
    new = _load(dataset, _write(tmp_path / "edited.csv", new_header, edited))

    keyed = services.compare_versions(dataset, old.number, new.number, key=["unique_key"])
    assert (keyed.rows_added, keyed.rows_removed, keyed.rows_changed) == (2, 3, changed)
    assert keyed.rows_unchanged == len(rows) - 3 - changed
    assert keyed.changed_by_column["status"] == changed
    assert sum(keyed.changed_by_column.values()) == changed
    assert keyed.columns_added == ["checked"] and keyed.columns_removed == ["landmark"]

    whole = services.compare_versions(dataset, old.number, new.number)
    assert (whole.rows_added, whole.rows_removed, whole.rows_changed) == (
        2 + changed,
        3 + changed,
        0,
    )
    assert "2 added, 3 removed, 4 changed" in keyed.summary()

    same = services.compare_versions(dataset, old.number, old.number, key=["unique_key"])
    assert same.identical and same.rows_unchanged == len(rows)
    with pytest.raises(services.CatalogError, match="not in both versions"):
        services.compare_versions(dataset, old.number, new.number, key=["landmark"])
    with pytest.raises(services.CatalogError, match="does not identify the rows"):
        services.compare_versions(dataset, old.number, new.number, key=["agency"])


def test_a_slug_equal_to_a_fixed_catalog_page_is_refused(department):
    with pytest.raises(services.CatalogError, match="name of a catalog page"):
        services.register_dataset("sharing", title="共享", owner=department)


def test_every_fixed_catalog_page_is_reserved():
    # a fixed page added to catalog/urls.py without reserving its name would be shadowed by a
    # dataset of that name, or shadow it
    from civicpulse.catalog import urls
    from civicpulse.catalog.models import RESERVED_SLUGS

    fixed = {
        str(p.pattern).split("/")[0]
        for p in urls.urlpatterns
        if str(p.pattern) and not str(p.pattern).startswith("<")
    }
    assert fixed and fixed <= RESERVED_SLUGS
