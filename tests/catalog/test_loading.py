"""Loading department data into the catalog: every source kind, from real shared data."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.conf import settings

from civicpulse.catalog import loading, services
from civicpulse.catalog.models import DatasetVersion
from civicpulse.core.models import AuditEntry
from tests.support import shared_data, unavailable

pytestmark = pytest.mark.shared_data

NYC_100 = "311/nyc_311_qsv_100.csv"
BOSTON_100 = "311/boston_311_qsv_100.csv"
TIPDM = "zh/tipdm2020_gov_messages_labeled_part_a.csv"
LA_2020 = "311/la_myla311_2020_seed.csv.gz"


def _csv_rows(path: Path, encoding: str = "utf-8-sig") -> tuple[list[str], list[list[str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _count(version: DatasetVersion, where: str = "true") -> int:
    glob = version.data_glob()
    return (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM read_parquet('{glob}') WHERE {where}")
        .fetchone()[0]
    )


def _load(dataset, source, **options):
    return services.load_version(dataset, source, user=None, progress=False, **options)


# --------------------------------------------------------------------------- CSV


def test_a_utf8_csv_becomes_version_one_with_schema_profile_and_audit(new_dataset):
    path = shared_data(NYC_100)
    header, rows = _csv_rows(path)
    dataset = new_dataset("nyc")
    version = _load(dataset, path)

    assert (version.number, version.status, version.source_kind) == (1, "current", "csv")
    assert version.row_count == len(rows) == _count(version)
    assert [c["name"] for c in version.schema] == header
    assert version.encoding == "utf-8" and version.source_name == str(path)
    dataset.refresh_from_db()
    assert dataset.current_version == version
    # The profile agrees with a plain reading of the file: an empty field is a null.
    columns = {c.name: c for c in version.columns.all()}
    for name in ("Closed Date", "Incident Zip", "Landmark"):
        i = header.index(name)
        assert columns[name].null_count == sum(1 for r in rows if r[i] == "")
    assert columns["Unique Key"].type == "BIGINT"
    # "04/18/2019 09:55:45 PM" is no format DuckDB is sure of: kept as text, never guessed at.
    assert columns["Created Date"].type == "VARCHAR"
    assert int(columns["Unique Key"].min_value) == min(int(r[0]) for r in rows)
    assert columns["Agency"].samples and len(columns["Agency"].samples) <= 5
    entry = AuditEntry.objects.filter(action="catalog.version_loaded", object_id=str(version.pk))
    assert entry.get().detail["rows"] == len(rows)
    # Readers find the files through the service and LakeVersion reads them.
    table = services.current_table(dataset)
    assert table.read().num_rows == len(rows)


def test_a_gzipped_csv_is_read_as_is(new_dataset):
    path = shared_data(LA_2020)
    _header, rows = _csv_rows(path)
    version = _load(new_dataset("la"), path)
    assert version.row_count == len(rows) == 10_000
    assert version.source_options["gzip"] is True


def test_gb18030_and_bom_files_give_the_same_rows_and_checksum(new_dataset, tmp_path):
    source = shared_data(TIPDM)
    text = source.read_text(encoding="utf-8")
    gbk = tmp_path / "messages-gbk.csv"
    gbk.write_bytes(text.encode("gb18030"))
    bom = tmp_path / "messages-bom.csv.gz"
    bom.write_bytes(gzip.compress(b"\xef\xbb\xbf" + text.encode("utf-8")))
    _header, rows = _csv_rows(source)

    first = _load(new_dataset("tipdm"), source)
    from_gbk = _load(new_dataset("tipdm"), gbk)
    from_bom = _load(new_dataset("tipdm"), bom)
    assert from_gbk.encoding == "gb18030" and from_bom.encoding == "utf-8-sig"
    assert first.row_count == from_gbk.row_count == from_bom.row_count == len(rows)
    assert first.checksum == from_gbk.checksum == from_bom.checksum
    assert [c["name"] for c in from_gbk.schema][:2] == ["留言编号", "留言用户"]
    topics = {r[2] for r in rows}
    stored = (
        duckdb.connect()
        .execute(f"SELECT 留言主题 FROM read_parquet('{from_gbk.data_glob()}')")
        .fetchall()
    )
    assert {r[0] for r in stored} == topics


def test_loading_the_same_content_again_is_refused_as_unchanged(new_dataset, tmp_path):
    source = shared_data(TIPDM)
    dataset = new_dataset("same")
    first = _load(dataset, source)
    gbk = tmp_path / "again.csv"
    gbk.write_bytes(source.read_text(encoding="utf-8").encode("gb18030"))
    with pytest.raises(services.Unchanged, match="same data .* as version 1") as refused:
        _load(dataset, gbk)
    assert refused.value.version == first
    assert services.versions_of(dataset).count() == 1
    assert not [p for p in first.lake_dir().parent.iterdir() if p.name.startswith(".staging")]


def test_a_value_that_does_not_fit_late_in_the_file_makes_the_column_text(new_dataset, tmp_path):
    header, rows = _csv_rows(shared_data(BOSTON_100))
    rows = rows * 300  # 30,000 rows: beyond DuckDB's type sample
    i = header.index("case_enquiry_id")
    rows[-1] = list(rows[-1])
    rows[-1][i] = "N/A"
    path = tmp_path / "late.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    version = _load(new_dataset("late"), path)
    assert version.row_count == len(rows)
    assert {c["name"]: c["type"] for c in version.schema}["case_enquiry_id"] == "VARCHAR"
    assert version.source_options["text_columns"] == ["case_enquiry_id"]
    assert _count(version, "case_enquiry_id = 'N/A'") == 1


def test_semicolon_and_tab_delimiters_are_sniffed(new_dataset, tmp_path):
    header, rows = _csv_rows(shared_data(NYC_100))
    for delimiter, name in ((";", "semi.csv"), ("\t", "tabs.tsv")):
        path = tmp_path / name
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, delimiter=delimiter).writerows([header, *rows])
        version = _load(new_dataset("delim"), path)
        assert version.source_options["delimiter"] == delimiter
        assert len(version.schema) == len(header) and version.row_count == len(rows)


# --------------------------------------------------------------------------- other formats


def _boston_records(limit: int = 60) -> tuple[list[str], list[dict]]:
    """Real rows with integer, decimal and text columns, typed as every format can hold them."""
    header, rows = _csv_rows(shared_data(BOSTON_100))
    names = ["case_enquiry_id", "case_status", "case_title", "neighborhood", "latitude"]
    records = []
    for row in rows[:limit]:
        record = dict(zip(header, row, strict=True))
        records.append(
            {
                "case_enquiry_id": int(record["case_enquiry_id"]),
                "case_status": record["case_status"],
                "case_title": record["case_title"] or None,
                "neighborhood": record["neighborhood"].strip() or None,
                "latitude": float(record["latitude"]),
            }
        )
    return names, records


def _write_all_formats(tmp_path: Path, names: list[str], records: list[dict]) -> dict[str, Path]:
    from openpyxl import Workbook
    from sqlalchemy import create_engine, text

    paths = {}
    paths["csv"] = tmp_path / "cases.csv"
    with open(paths["csv"], "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for r in records:
            writer.writerow(["" if r[n] is None else r[n] for n in names])
    paths["json"] = tmp_path / "cases.json"
    paths["json"].write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    paths["jsonl"] = tmp_path / "cases.jsonl.gz"
    paths["jsonl"].write_bytes(
        gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode())
    )
    paths["parquet"] = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_pylist(records), paths["parquet"])
    paths["xlsx"] = tmp_path / "cases.xlsx"
    book = Workbook()
    book.active.title = "notes"
    book.active.append(["this sheet is not the data"])
    sheet = book.create_sheet("cases")
    sheet.append(names)
    for r in records:
        sheet.append([r[n] for n in names])
    book.save(paths["xlsx"])
    paths["sqlite"] = tmp_path / "cases.sqlite3"
    engine = create_engine(f"sqlite:///{paths['sqlite']}")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE cases (case_enquiry_id INTEGER, case_status TEXT, case_title TEXT,"
                " neighborhood TEXT, latitude REAL)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO cases VALUES (:case_enquiry_id, :case_status, :case_title, "
                ":neighborhood, :latitude)"
            ),
            records,
        )
    engine.dispose()
    return paths


def test_the_same_rows_have_the_same_checksum_in_every_format(new_dataset, tmp_path):
    names, records = _boston_records()
    paths = _write_all_formats(tmp_path, names, records)
    versions = {
        "csv": _load(new_dataset("fmt"), paths["csv"]),
        "json": _load(new_dataset("fmt"), paths["json"]),
        "jsonl": _load(new_dataset("fmt"), paths["jsonl"]),
        "parquet": _load(new_dataset("fmt"), paths["parquet"]),
        "xlsx": _load(new_dataset("fmt"), paths["xlsx"], sheet="cases"),
        "sqlite": _load(new_dataset("fmt"), f"sqlite:///{paths['sqlite']}", table="cases"),
    }
    for kind, version in versions.items():
        assert version.row_count == len(records), kind
        assert [c["name"] for c in version.schema] == names, kind
    types = {k: [c["type"] for c in v.schema] for k, v in versions.items()}
    assert all(t == ["BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE"] for t in types.values())
    assert len({v.checksum for v in versions.values()}) == 1, {
        k: v.checksum[:8] for k, v in versions.items()
    }
    # One value different, anywhere, and the checksum differs.
    records[17]["case_status"] = records[17]["case_status"] + "x"
    (tmp_path / "changed").mkdir()
    changed = _write_all_formats(tmp_path / "changed", names, records)
    assert _load(new_dataset("fmt"), changed["csv"]).checksum != versions["csv"].checksum
    # The rows in another order are other data.
    reordered = tmp_path / "reordered.parquet"
    pq.write_table(pa.Table.from_pylist(records[::-1]), reordered)
    assert _load(new_dataset("fmt"), reordered).checksum != versions["parquet"].checksum


def test_the_checksum_taken_while_writing_is_the_checksum_of_the_written_file(
    new_dataset, tmp_path
):
    """The loader hashes the rows as it writes them, not by reading its file back: for real
    files (one past the checksum's 131,072-row batches, one read as GB18030, one gzip'd, a JSON
    Lines file DuckDB hands over in uneven batches) that digest must be ``checksum`` of the
    file written, and of the same rows written by DuckDB's own COPY (as loads wrote them
    before), row groups of another size and all."""
    la = shared_data(LA_2020)
    past_a_batch = tmp_path / "la-140k.csv"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT s.* FROM range(14) AS r(k), read_csv('{la}', all_varchar = true) AS s "
        f"ORDER BY k) TO '{past_a_batch}' (FORMAT csv, HEADER true)"
    )
    names, records = _boston_records()
    jsonl = _write_all_formats(tmp_path, names, records)["jsonl"]
    sources = [shared_data(BOSTON_100), shared_data(TIPDM), la, past_a_batch, jsonl]
    versions = {}
    for source in sources:
        version = versions[source] = _load(new_dataset("sum"), source)
        data = version.lake_dir() / loading.DATA_FILE
        assert version.checksum == loading.checksum(data), source
        by_duckdb = tmp_path / "by-duckdb.parquet"
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{data}')) TO '{by_duckdb}' "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
        )
        assert loading.checksum(by_duckdb) == version.checksum, source
    con.close()
    assert versions[jsonl].row_count == len(records)
    assert versions[past_a_batch].row_count == 14 * versions[la].row_count > loading.HASH_ROWS
    written = pq.ParquetFile(versions[past_a_batch].lake_dir() / loading.DATA_FILE).metadata
    assert written.row_group(0).num_rows == loading.HASH_ROWS  # written in the hashed batches
    assert len({v.checksum for v in versions.values()}) == len(sources)


def test_an_excel_sheet_keeps_dates_and_refuses_values_beyond_its_header(new_dataset, tmp_path):
    from openpyxl import Workbook

    header, rows = _csv_rows(shared_data(TIPDM))
    book = Workbook()
    sheet = book.active
    sheet.title = "留言"
    sheet.append(["留言编号", "留言主题", "留言日期", "留言时间"])
    for row in rows:
        when = dt.datetime.strptime(row[3], "%Y/%m/%d %H:%M:%S")
        sheet.append([int(row[0]), row[2], when.replace(hour=0, minute=0, second=0), when])
    path = tmp_path / "messages.xlsx"
    book.save(path)
    version = _load(new_dataset("xlsx"), path, sheet="留言")
    types = {c["name"]: c["type"] for c in version.schema}
    assert types == {
        "留言编号": "BIGINT",
        "留言主题": "VARCHAR",
        "留言日期": "DATE",
        "留言时间": "TIMESTAMP WITH TIME ZONE",
    }
    assert version.row_count == len(rows) and version.source_options["sheet"] == "留言"
    # a zone-less time in the sheet is the city's clock
    city = ZoneInfo(settings.CONFIG.time_zone)
    first = dt.datetime.strptime(rows[0][3], "%Y/%m/%d %H:%M:%S").replace(tzinfo=city)
    stored = (
        duckdb.connect()
        .execute(f"SELECT 留言时间 FROM read_parquet('{version.data_glob()}') LIMIT 1")
        .fetchone()[0]
    )
    assert stored == first

    sheet.cell(row=5, column=6, value="stray")
    book.save(path)
    with pytest.raises(services.LoadFailed, match=r"\[留言\]: row 5 has a value beyond"):
        _load(new_dataset("xlsx"), path, sheet="留言")
    with pytest.raises(services.LoadFailed, match="has no sheet 'Sheet9'"):
        _load(new_dataset("xlsx"), path, sheet="Sheet9")


def test_a_sqlite_query_loads_its_rows_and_the_url_keeps_no_password(new_dataset, tmp_path):
    names, records = _boston_records(100)
    paths = _write_all_formats(tmp_path, names, records)
    url = f"sqlite:///{paths['sqlite']}"
    version = _load(
        new_dataset("sql"),
        url,
        query="SELECT case_enquiry_id, case_status FROM cases WHERE case_status = 'Open'",
    )
    assert version.row_count == sum(1 for r in records if r["case_status"] == "Open") > 0
    assert version.source_kind == "sql" and version.source_options["query"].startswith("SELECT")
    label = loading.source_label("postgresql+psycopg://clerk:s3cret@db.gov:5432/permits", "sql")
    assert "s3cret" not in label and label.startswith("postgresql+psycopg://clerk@db.gov")
    with pytest.raises(services.LoadFailed, match="the database refused: no such table"):
        _load(new_dataset("sql"), url, table="nowhere")


@pytest.mark.postgres
def test_a_postgresql_table_loads_through_sqlalchemy(new_dataset):
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    names, records = _boston_records(100)
    base = os.environ.get("CIVICPULSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
    url = f"{base}/postgres"
    schema = f"catalog_scratch_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
            conn.execute(
                text(
                    f"CREATE TABLE {schema}.cases (case_enquiry_id BIGINT, case_status TEXT, "
                    "case_title TEXT, neighborhood TEXT, latitude DOUBLE PRECISION, "
                    "opened TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    f"INSERT INTO {schema}.cases VALUES (:case_enquiry_id, :case_status, "
                    ":case_title, :neighborhood, :latitude, TIMESTAMP '2022-01-21 13:47:00')"
                ),
                records,
            )
    except OperationalError as exc:
        engine.dispose()
        unavailable(f"PostgreSQL at {url} is unreachable: {str(exc).splitlines()[0]}")
    try:
        version = _load(new_dataset("pg"), url, table=f"{schema}.cases")
        sqlite_like = _load(
            new_dataset("pg"), url, query=f"SELECT {', '.join(names)} FROM {schema}.cases"
        )
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    assert version.row_count == len(records)
    assert {c["name"]: c["type"] for c in version.schema}["opened"] == "TIMESTAMP WITH TIME ZONE"
    # The same rows as the CSV of them.
    csv_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{schema}.csv"
    try:
        with open(csv_path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(names)
            for r in records:
                writer.writerow(["" if r[n] is None else r[n] for n in names])
        assert _load(new_dataset("pg"), csv_path).checksum == sqlite_like.checksum
    finally:
        csv_path.unlink(missing_ok=True)


def test_a_load_shows_a_progress_bar(new_dataset, tmp_path, capsys):
    source = shared_data(TIPDM)
    gbk = tmp_path / "messages.csv"
    gbk.write_bytes(source.read_text(encoding="utf-8").encode("gb18030"))
    services.load_version(new_dataset("bar"), gbk, user=None, progress=True)
    err = capsys.readouterr().err
    assert "messages.csv (gb18030)" in err and "100%" in err  # the transcoding pass


def test_a_recorded_database_url_keeps_no_secret_anywhere_in_it():
    from civicpulse.catalog.loading import source_label

    cases = {
        "postgresql://u:s3cret@h/db": "postgresql://u@h/db",
        "postgresql://u@h/db?password=s3cret&sslmode=require": "postgresql://u@h/db?sslmode=require",
        "mssql+pyodbc://h/db?odbc_connect=DRIVER%3Dx%3BPWD%3Ds3cret": "mssql+pyodbc://h/db",
        "postgresql://u:s3cret@h:notaport/db": "postgresql://h:notaport/db",
    }
    for url, label in cases.items():
        got = source_label(url, "sql")
        assert got == label and "s3cret" not in got, (url, got)


def test_a_file_name_duckdb_would_read_as_a_pattern_is_refused(new_dataset, tmp_path):
    from civicpulse.catalog.loading import LoadFailed

    dataset = new_dataset("pattern")
    (tmp_path / "a1.csv").write_text("x\n1\n", encoding="utf-8")
    (tmp_path / "a2.csv").write_text("x\n2\n", encoding="utf-8")
    odd = tmp_path / "a*.csv"
    odd.write_text("x\n3\n", encoding="utf-8")
    with pytest.raises(LoadFailed, match=r"rename the file"):
        services.load_version(dataset, odd, user="test")
    assert dataset.versions.count() == 0


def test_codes_with_leading_zeros_stay_text_and_quantities_stay_numbers(new_dataset, tmp_path):
    path = tmp_path / "codes.csv"
    rows = [("010010", "01", "7", "2.50"), ("100000", "13", "12", "10.00")] * 30
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("postcode", "industry", "count", "price"), *rows])
    version = _load(new_dataset("codes"), path)
    types = {c["name"]: c["type"] for c in version.schema}
    assert types["postcode"] == "VARCHAR" and types["industry"] == "VARCHAR"
    assert types["count"] == "BIGINT" and types["price"].startswith(("DOUBLE", "DECIMAL"))
    stored = duckdb.connect().execute(
        f"SELECT postcode, industry FROM read_parquet('{version.data_glob()}') LIMIT 1"
    ).fetchone()
    assert stored == ("010010", "01")
