"""The data hub: loading a million-row CSV into the lake, and ``datastore_search`` over a
million-row open-data release, each beside the same work done by bare DuckDB in the same run.

    /tmp/cpvenv/bin/python -m benchmarks.catalog [--rows 1000000] [--repeat 3]
                                                 [--requests 200] [--no-write]

Everything runs in a throwaway data dir (SQLite store, lake, and the ``civicpulse serve`` the
latency is measured against); ../shared/data is read in place. The CSV is built once per run
from the real MyLA311 2020 rows (see :func:`build_csv`), then saved again as GB18030 and
gzip'd. Writes the "Data hub (catalog)" section of docs/benchmarks.md. Nothing here asserts a
time, but the search figure is checked: each request's ``total`` and first rows must equal bare
DuckDB's for the same filter, or the run fails (a wrong fast answer is no figure).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from datetime import date
from pathlib import Path

from benchmarks.report import REPO, machine, table, write_section

LA_2020 = REPO.parent / "shared" / "data" / "311" / "la_myla311_2020_seed.csv.gz"
HEADING = "Data hub (catalog)"
DEPARTMENT = "BENCH-CAT"
# A department of a Chinese city names its request types in Chinese: the 2020 seed's types, as
# such a department would export them (so the GB18030 file differs from the UTF-8 one).
REQUEST_TYPES = {
    "Bulky Items": "大件垃圾清运",
    "Graffiti Removal": "涂鸦清除",
    "Illegal Dumping Pickup": "非法倾倒清运",
    "Metal/Household Appliances": "废旧金属及家电回收",
    "Homeless Encampment": "流浪人员聚集点",
    "Electronic Waste": "电子废弃物回收",
    "Dead Animal Removal": "动物尸体清理",
    "Other": "其他",
    "Single Streetlight Issue": "单盏路灯故障",
    "Multiple Streetlight Issue": "多盏路灯故障",
    "Report Water Waste": "浪费用水举报",
}
# The release's columns: the request's number (unique), its type and status (a dozen values
# each), when it came in, the neighbourhood council and where.
RELEASE_COLUMNS = [
    "srnumber",
    "requesttype",
    "status",
    "createddate",
    "closeddate",
    "requestsource",
    "zipcode",
    "ncname",
    "latitude",
    "longitude",
]
SEARCH_LIMIT = 100


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


# ------------------------------------------------------------------------------ data


def build_csv(target: Path, rows: int) -> None:
    """``rows`` rows of MyLA311 as a department exports them: the 10,000 real rows of the 2020
    seed repeated, each repetition shifted three days later, with its own request numbers and
    its coordinates moved by up to ~50 m, request types in Chinese, times as ISO 8601. Written
    by DuckDB as UTF-8.

    The seed's own times ("1/13/20 0:05") are not kept: DuckDB's sniffer takes them for D/M/YY
    from the first 20,480 rows, and bare ``read_csv`` then fails at line 40,002 (the catalog's
    loader reads such a column as text and goes on), which would leave no baseline."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE seed AS SELECT * FROM read_csv(?, all_varchar = true)", [str(LA_2020)]
    )
    seed_rows = con.execute("SELECT count(*) FROM seed").fetchone()[0]
    copies = -(-rows // seed_rows)
    cases = " ".join(f"WHEN {_sql(en)} THEN {_sql(zh)}" for en, zh in REQUEST_TYPES.items())
    fmt_in, fmt_out = "'%m/%d/%y %H:%M'", "'%Y-%m-%d %H:%M:%S'"

    def shifted(column: str) -> str:
        return (
            f"coalesce(strftime(try_strptime({column}, {fmt_in}) + to_days(3 * k), {fmt_out}), "
            f"{column})"
        )

    columns = [r[0] for r in con.execute("DESCRIBE seed").fetchall()]
    items = []
    for name in columns:
        if name == "srnumber":
            items.append("'1-' || CAST(1600000000 + k * 100000 + n AS VARCHAR) AS srnumber")
        elif name == "requesttype":
            items.append(f"CASE requesttype {cases} ELSE requesttype END AS requesttype")
        elif name.endswith("date"):
            items.append(f"{shifted(name)} AS {name}")
        elif name in ("latitude", "longitude"):
            items.append(
                f"CASE WHEN {name} IS NULL OR {name} = '0' THEN {name} ELSE CAST(round("
                f"CAST({name} AS DOUBLE) + (CAST(hash(k, n, '{name}') % 1000 AS BIGINT) - 500)"
                f" / 1e6, 8) AS VARCHAR) END AS {name}"
            )
        else:
            items.append(name)
    con.execute(
        f"""COPY (
            SELECT {", ".join(items)}
            FROM (SELECT *, row_number() OVER () AS n FROM seed) AS s, range({copies}) AS r(k)
            ORDER BY k, n LIMIT {rows}
        ) TO '{target}' (FORMAT csv, HEADER true)"""
    )
    con.close()


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def save_as(source: Path, target: Path, encoding: str | None = None, zipped: bool = False) -> None:
    """``source`` (UTF-8) rewritten in ``encoding``, or gzip'd (level 6, gzip's default)."""
    opener = (
        (lambda p: gzip.open(p, "wb", compresslevel=6)) if zipped else (lambda p: open(p, "wb"))
    )
    with open(source, encoding="utf-8", newline="") as src, opener(target) as out:
        while chunk := src.read(4 * 1024 * 1024):
            out.write(chunk.encode(encoding or "utf-8"))


# ------------------------------------------------------------------------------ load


class Stopwatch:
    """Wall time spent in some of ``catalog.loading``'s functions during one load, by wrapping
    them (the loader looks them up as module globals at each call)."""

    PARTS = {
        "_transcode": "transcode",
        "_copy_to_parquet": "copy",
        "_inspect": "profile+checksum",
        "checksum": "checksum",
        "_publish": "publish",
        "_record": "record",
    }

    def __init__(self) -> None:
        from civicpulse.catalog import loading

        self.loading = loading
        self.spent: dict[str, float] = defaultdict(float)
        self._originals = {name: getattr(loading, name) for name in self.PARTS}

    def __enter__(self) -> Stopwatch:
        for name, label in self.PARTS.items():
            setattr(self.loading, name, self._timed(self._originals[name], label))
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self._originals.items():
            setattr(self.loading, name, original)

    def _timed(self, fn, label: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - started

        return timed


def duckdb_copy(csv_path: Path, target: Path, compression: str | None = None) -> float:
    """The baseline: DuckDB's own ``read_csv`` → Parquet, nothing else, in seconds."""
    import duckdb

    con = duckdb.connect()
    try:
        started = time.perf_counter()
        options = "FORMAT parquet" + (f", COMPRESSION {compression}" if compression else "")
        con.execute(
            f"COPY (SELECT * FROM read_csv({_sql(str(csv_path))}, header = true)) "
            f"TO {_sql(str(target))} ({options})"
        )
        return time.perf_counter() - started
    finally:
        con.close()
        target.unlink(missing_ok=True)


def bench_load(sources: dict[str, Path], repeat: int, scratch: Path, user) -> dict:
    """Each file loaded ``repeat`` times into a new dataset, alternating with the baseline on
    the UTF-8 file (and, for the gzip'd file, also on the gzip'd file); the best of each."""
    from civicpulse.catalog import services

    baseline_source = {"utf-8": sources["utf-8"], "gb18030": sources["utf-8"]}
    baseline_source["gzip"] = sources["gzip"]
    out: dict = {}
    number = 0
    for variant, path in sources.items():
        catalog_runs, baseline_runs = [], []
        for trial in range(repeat):
            number += 1
            dataset = services.register_dataset(
                f"bench-la311-{number}", title="MyLA311 服务请求", owner=DEPARTMENT, user=user
            )
            with Stopwatch() as watch:
                started = time.perf_counter()
                version = services.load_version(dataset, path, user=user, progress=False)
                whole = time.perf_counter() - started
            catalog_runs.append((whole, dict(watch.spent), version))
            baseline_runs.append(duckdb_copy(baseline_source[variant], scratch / "base.parquet"))
            progress(
                f"load {variant} #{trial + 1} (read as {version.encoding}): catalog {whole:.2f} s "
                f"({', '.join(f'{k} {v:.2f}' for k, v in watch.spent.items())}), "
                f"DuckDB {baseline_runs[-1]:.2f} s"
            )
        whole, spent, version = min(catalog_runs, key=lambda run: run[0])
        out[variant] = {
            "catalog": whole,
            "spent": spent,
            "baseline": min(baseline_runs),
            "version": version,
        }
    return out


def bench_load_parts(utf8: Path, version, scratch: Path) -> dict[str, float]:
    """Pieces of the catalog's load timed alone, for the proposals: the baseline written with
    zstd (the lake's codec), the checksum alone, and the profile query alone."""
    from civicpulse.catalog import loading

    data = version.lake_dir() / loading.DATA_FILE
    parts = {
        "baseline zstd": min(duckdb_copy(utf8, scratch / "z.parquet", "zstd") for _ in range(2)),
    }
    started = time.perf_counter()
    loading.checksum(data)
    parts["checksum alone"] = time.perf_counter() - started
    original = loading.checksum
    loading.checksum = lambda _path: ""  # the profile query without the checksum beside it
    try:
        started = time.perf_counter()
        loading._inspect(data, str(data))
        parts["profile alone"] = time.perf_counter() - started
    finally:
        loading.checksum = original
    return parts


# ------------------------------------------------------------------------------ search


def publish_release(version, maker, approver):
    """The 1M-row version published through the open-data workflow (draft → check → approve →
    publish), ``RELEASE_COLUMNS`` only, no quasi-identifiers declared."""
    from civicpulse.catalog import opendata

    release = opendata.draft(
        version.dataset,
        version=version,
        columns=RELEASE_COLUMNS,
        quasi_identifiers=[],
        no_quasi_identifiers=True,
        title="MyLA311 服务请求（基准）",
        title_en="MyLA311 service requests (benchmark)",
        user=maker,
    )
    report = opendata.check(release, user=maker)
    if not report["passed"]:
        raise RuntimeError(f"the benchmark's release was refused: {report['reasons']}")
    return opendata.publish(opendata.approve(release, approver), approver)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    bind = f"127.0.0.1:{_free_port()}"
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - the server's for its lifetime
    server = subprocess.Popen(
        [sys.executable, "-m", "civicpulse.cli", "serve", "--bind", bind],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{bind}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            return server, url
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError((data_dir / "server.log").read_text()[-3000:]) from None
            time.sleep(0.3)


def search_plan(release, requests: int) -> list[tuple[str, str]]:
    """``requests`` (column, value) filters: half on the request type (11 values, ~90,000 rows
    each on average), half on the request number (one row each), in a shuffled order."""
    import duckdb

    con = duckdb.connect()
    glob = release.data_glob()
    types = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT requesttype FROM read_parquet(?) ORDER BY 1", [glob]
        ).fetchall()
    ]
    numbers = [
        r[0]
        for r in con.execute(
            "SELECT srnumber FROM read_parquet(?) USING SAMPLE 200 ROWS", [glob]
        ).fetchall()
    ]
    con.close()
    rng = random.Random(2260)
    plan = [("requesttype", rng.choice(types)) for _ in range(requests // 2)]
    plan += [("srnumber", rng.choice(numbers)) for _ in range(requests - requests // 2)]
    rng.shuffle(plan)
    return plan


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def bench_search(release, data_dir: Path, requests: int) -> dict:
    """p50/p95/max of ``datastore_search`` over HTTP (a live ``civicpulse serve``) and in-process
    (the action alone), beside bare DuckDB's SELECT ... WHERE ... LIMIT 100 and count(*) on the
    same Parquet, per filtered column."""
    import duckdb
    import requests as http

    plan = search_plan(release, requests)
    glob = release.data_glob()
    raw = duckdb.connect()
    select = ", ".join(RELEASE_COLUMNS)

    def bare(column: str, value: str) -> tuple[int, list]:
        rows = raw.execute(
            f"SELECT {select} FROM read_parquet(?) WHERE {column} = ? LIMIT {SEARCH_LIMIT}",
            [glob, value],
        ).fetchall()
        total = raw.execute(
            f"SELECT count(*) FROM read_parquet(?) WHERE {column} = ?", [glob, value]
        ).fetchone()[0]
        return total, rows

    def bare_ordered(column: str, value: str) -> None:
        raw.execute(
            f"SELECT {select} FROM read_parquet(?, file_row_number = true) WHERE {column} = ? "
            f"ORDER BY file_row_number LIMIT {SEARCH_LIMIT}",
            [glob, value],
        ).fetchall()
        raw.execute(
            f"SELECT count(*) FROM read_parquet(?) WHERE {column} = ?", [glob, value]
        ).fetchone()

    from civicpulse.catalog import ckan

    def params(column: str, value: str) -> dict:
        return {
            "resource_id": str(release.resource_id),
            "filters": json.dumps({column: value}, ensure_ascii=False),
            "limit": str(SEARCH_LIMIT),
        }

    server, url = serve(data_dir)
    session = http.Session()
    endpoint = f"{url}/api/3/action/datastore_search"
    timings: dict[str, dict[str, list[float]]] = {
        way: defaultdict(list) for way in ("http", "action", "duckdb", "duckdb ordered")
    }
    try:
        for column, value in plan[:10]:  # warm both servers' workers, the OS cache, DuckDB
            session.get(endpoint, params=params(column, value), timeout=60).raise_for_status()
            bare(column, value)
        for column, value in plan:
            started = time.perf_counter()
            response = session.get(endpoint, params=params(column, value), timeout=60)
            timings["http"][column].append(time.perf_counter() - started)
            response.raise_for_status()
            result = response.json()["result"]

            started = time.perf_counter()
            ckan.datastore_search(params(column, value))
            timings["action"][column].append(time.perf_counter() - started)

            started = time.perf_counter()
            total, rows = bare(column, value)
            timings["duckdb"][column].append(time.perf_counter() - started)

            started = time.perf_counter()
            bare_ordered(column, value)
            timings["duckdb ordered"][column].append(time.perf_counter() - started)

            if result["total"] != total or len(result["records"]) != len(rows):
                raise RuntimeError(
                    f"datastore_search {column}={value!r}: total {result['total']} and "
                    f"{len(result['records'])} records, bare DuckDB {total} and {len(rows)}"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        raw.close()
    return {
        way: {
            column: {
                "n": len(values),
                "p50": statistics.median(values),
                "p95": percentile(values, 95),
                "max": max(values),
            }
            for column, values in by_column.items()
        }
        for way, by_column in timings.items()
    }


# ------------------------------------------------------------------------------ report


def section(load: dict, parts: dict, search: dict | None, why_not: str, facts: dict) -> list[str]:
    rows = []
    for variant, label in (
        ("utf-8", "UTF-8 CSV"),
        ("gb18030", "GB18030 CSV (transcoded)"),
        ("gzip", "gzip'd UTF-8 CSV"),
    ):
        if variant not in load:
            continue
        got = load[variant]
        spent = got["spent"]
        where = ", ".join(
            f"{name} {spent[name]:.1f} s"
            for name in ("transcode", "copy", "profile+checksum", "checksum", "publish", "record")
            if name in spent
        )
        base_what = "DuckDB read_csv → Parquet" + (" (of the .gz)" if variant == "gzip" else "")
        rows.append(
            (
                f"load {facts['rows']:,}-row {label} ({facts['size_' + variant]}), whole "
                f"load_version; of it: {where}",
                f"{got['catalog']:.1f} s",
                f"{base_what} {got['baseline']:.1f} s",
                f"{got['catalog'] / got['baseline']:.2f}x",
            )
        )
    if search is not None:
        for column, label in (
            ("requesttype", "request type, 11 values"),
            ("srnumber", "request number, unique"),
        ):
            http_, action, duck = (search[w][column] for w in ("http", "action", "duckdb"))
            ordered = search["duckdb ordered"][column]
            rows.append(
                (
                    f"datastore_search, filters on {label}, limit {SEARCH_LIMIT}, "
                    f"{http_['n']} requests over HTTP: p50 / p95 / max",
                    f"{http_['p50'] * 1000:.0f} / {http_['p95'] * 1000:.0f} / "
                    f"{http_['max'] * 1000:.0f} ms (action alone {action['p50'] * 1000:.0f} / "
                    f"{action['p95'] * 1000:.0f} ms)",
                    f"DuckDB WHERE … LIMIT {SEARCH_LIMIT} + count {duck['p50'] * 1000:.0f} / "
                    f"{duck['p95'] * 1000:.0f} / {duck['max'] * 1000:.0f} ms (with ORDER BY "
                    f"row {ordered['p50'] * 1000:.0f} / {ordered['p95'] * 1000:.0f} ms)",
                    f"{http_['p95'] / duck['p95']:.1f}x at p95",
                )
            )
    else:
        rows.append(
            (
                "datastore_search with a filter on a 1M-row release: p95",
                f"TODO, not measured: {why_not}",
                "—",
                "—",
            )
        )
    lines = [
        f"Measured {facts['date']} on {machine()} by `python -m benchmarks.catalog` "
        f"({facts['load']}; the machine is shared, so the run's figures carry its noise). "
        "Each figure stands beside a baseline measured in the same run, in the same process.",
        "",
        *table(rows, ("what", "time", "baseline", "ratio")),
        "",
        f"**The CSV.** {facts['rows']:,} rows × 24 columns of MyLA311 (the real 10,000 rows of "
        "`../shared/data/311/la_myla311_2020_seed.csv.gz` repeated, each repetition shifted three "
        "days later with its own request numbers and coordinates moved by up to ~50 m; the request "
        "types written in Chinese, as a department here would export them, times as ISO 8601 — the "
        "seed's M/D/YY times fool DuckDB's sniffer, and bare `read_csv` fails on them at line "
        "40,002 where the catalog's loader keeps the column as text and goes on), built by "
        "DuckDB once "
        "per run, then saved as GB18030 and gzip'd (level 6) by Python.",
        "",
        "**Loading.** Each row is the best of "
        f"{facts['repeat']} runs of `catalog.services.load_version(dataset, path, user=..., "
        "progress=False)` — the whole load: encoding found from the file's first MiB (the "
        "GB18030 file is found so, then transcoded to UTF-8 in one streaming pass), delimiter "
        "sniffed, DuckDB's `read_csv` streamed as Arrow batches with lake types, written to "
        "zstd Parquet by pyarrow and hashed (SHA-256 over Arrow buffers) in the same pass, the "
        "profile query (min/max/approx. distinct/nulls of each column), fsync and rename into "
        "place, version and column rows stored — each run into a new dataset, alternating with "
        "the baseline: `COPY (SELECT * FROM read_csv('<path>', header=true)) TO '<tmp>.parquet' "
        "(FORMAT parquet)` on a fresh DuckDB connection in the same process (on the UTF-8 file "
        "for the UTF-8 and GB18030 rows, since DuckDB reads GB18030 only through an extension "
        "it downloads; on the .gz for the gzip row). Where the time goes is the same best run's "
        "time inside the loader's own functions (wrapped for the run): *copy* is "
        "`_copy_to_parquet` (DESCRIBE of the sniffed read, then the streamed write and hash), "
        "*profile+checksum* `_inspect` (the profile query; the checksum is already taken), "
        "*publish* the fsyncs and rename, *record* the store's transaction. DuckDB and the "
        "loader both use every core the machine has (2).",
    ]
    if parts:
        lines += [
            "",
            "Pieces timed alone after the loads, on the same files: "
            + "; ".join(f"{k} {v:.2f} s" for k, v in parts.items())
            + ".",
        ]
    if search is not None:
        lines += [
            "",
            f"**Search.** The first UTF-8 version published as an open-data release through "
            f"`catalog.opendata` (draft → check → approve by a second person → publish), "
            f"{len(RELEASE_COLUMNS)} columns ({', '.join(RELEASE_COLUMNS)}), "
            f"{facts['release_rows']:,} rows, {facts['release_size']} of zstd Parquet. "
            f"{facts['requests']} `GET /api/3/action/datastore_search?resource_id=…&"
            f'filters={{"col": value}}&limit={SEARCH_LIMIT}` one after another against a live '
            "`civicpulse serve` (gunicorn, its default workers) on the same machine with one "
            "keep-alive `requests` session, half filtering on the request type (a value drawn "
            "from its 11), half on the request number (one drawn from a 200-row sample; one row "
            "matches), shuffled, after 10 warm-up requests; p50/p95/max per column. Beside each "
            "request, in this process: the action alone (`ckan.datastore_search(params)`, no "
            "HTTP), and bare DuckDB on one open connection: `SELECT <the 10 columns> FROM "
            "read_parquet(<release>) WHERE col = ? LIMIT 100` plus `SELECT count(*) ... WHERE "
            "col = ?` (datastore_search returns `total`); and, in brackets, the same with "
            "`ORDER BY` the file row number, which datastore_search does to give stable `_id`s "
            "and pages. Every request's `total` and number of records were checked against bare "
            "DuckDB's.",
        ]
    lines += ["", *PROPOSALS]
    return lines


# What profiling found, by hand, on 2026-11-26 on the machine above (ad-hoc scripts in
# /tmp/catprof, not in the repo; each figure is the best of 4-6 runs interleaved with the
# baseline, medians of 20 for the queries).
# Kept as prose beside the measured table: re-measure before acting on them.
PROPOSALS = [
    "**Noise.** On this shared machine read the ratios to about ±0.3–0.5: the same code gave "
    "1.53× (UTF-8), 2.05× (GB18030) and 2.47× (gzip) for the loads, and p95s of 39 and 31 ms "
    "for the searches, in a run at load average 3.8 → 3.3 half an hour before the one above. "
    "The 1.5× target for the UTF-8 load is met when the machine is quiet and only just missed "
    "when it is busy.",
    "",
    "**What made the load faster** (from 1.81× on the first measurement the same day): the "
    "checksum was taken by reading back the Parquet just written (0.27 s of 0.39 s); now "
    "DuckDB's rows come out as Arrow batches that are written and hashed in one pass, with "
    "reading, writing and hashing overlapped. The checksum keeps its definition (a test "
    "compares the streamed digest with `checksum(file)` on five real files, across the "
    "131,072-row batch boundary). The price: the lake's files are about 16% larger than "
    "DuckDB's own COPY wrote them (27 MB against 23.5 MB for this CSV). GB18030 still pays "
    "for a one-core Python transcode (about 0.9 s for 262 MB); splitting it across processes "
    "is not done.",
    "",
    "**What made `datastore_search` faster** (from 6.8× at p95): in a one-file release the "
    "filter, the order and `_id` now use the file row number in one SELECT (the `_id` computed "
    "in a subquery and ordered on cost 53 ms for a filter matching ~90,000 rows); a release's "
    "columns and files are cached by resource id, checksum and file sizes and times; each "
    "process keeps one DuckDB connection and a request takes a cursor (opening a connection "
    "and the DESCRIBE had cost ~16 ms a request).",
]


def human_size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--results", help="also save the measurements to this JSON file")
    parser.add_argument(
        "--from-results", help="write the section from a saved JSON file, measuring nothing"
    )
    args = parser.parse_args()
    if args.from_results:
        lines = section(*json.loads(Path(args.from_results).read_text()))
        print("\n".join(lines))
        if not args.no_write:
            write_section(HEADING, lines)
        return
    load_note = f"1-minute load average {os.getloadavg()[0]:.1f} before it started"
    root = Path(tempfile.mkdtemp(prefix="civicpulse-bench-catalog-"))
    data_dir = root / "data"
    data_dir.mkdir()
    os.environ["CIVICPULSE_DATA_DIR"] = str(data_dir)
    os.environ.pop("CIVICPULSE_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model

        from civicpulse.core.models import Department

        Department.objects.get_or_create(
            code=DEPARTMENT, defaults={"name_zh": "城市管理局", "name_en": "City management"}
        )
        users = get_user_model().objects
        maker = users.create_superuser("bench-maker", "maker@example.org", "x")
        approver = users.create_superuser("bench-approver", "approver@example.org", "x")

        sources = {"utf-8": root / "la311.csv"}
        progress(f"building the {args.rows:,}-row CSV")
        build_csv(sources["utf-8"], args.rows)
        sources["gb18030"] = root / "la311-gb18030.csv"
        save_as(sources["utf-8"], sources["gb18030"], encoding="gb18030")
        sources["gzip"] = root / "la311.csv.gz"
        save_as(sources["utf-8"], sources["gzip"], zipped=True)
        facts = {
            "date": date.today().isoformat(),
            "rows": args.rows,
            "repeat": args.repeat,
            "requests": args.requests,
            **{f"size_{k}": human_size(p) for k, p in sources.items()},
        }
        progress(f"files: {', '.join(f'{k} {v}' for k, v in facts.items() if 'size' in k)}")
        scratch = root / "scratch"
        scratch.mkdir()
        load = bench_load(sources, args.repeat, scratch, maker)
        parts = bench_load_parts(sources["utf-8"], load["utf-8"]["version"], scratch)
        progress(f"parts: {parts}")

        search, why_not = None, ""
        if args.skip_search:
            why_not = "skipped (--skip-search)"
        else:
            try:
                release = publish_release(load["utf-8"]["version"], maker, approver)
                data = release.lake_dir() / "part-0.parquet"
                facts["release_rows"] = release.row_count
                facts["release_size"] = human_size(data)
                search = bench_search(release, data_dir, args.requests)
            except Exception as exc:  # a missing or failing action is reported, not made up
                why_not = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                progress(f"search not measured: {why_not}")
        load_note += f", {os.getloadavg()[0]:.1f} when it ended"
        facts["load"] = load_note
        for got in load.values():
            got.pop("version")
        if args.results:
            Path(args.results).write_text(
                json.dumps([load, parts, search, why_not, facts], ensure_ascii=False, indent=1)
            )
        lines = section(load, parts, search, why_not, facts)
        print("\n".join(lines))
        if not args.no_write:
            write_section(HEADING, lines)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
