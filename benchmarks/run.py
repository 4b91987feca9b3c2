"""The demo build and the cockpit's analytics, each beside a baseline measured in the same run.

    .venv/bin/python -m benchmarks.run [--size small|full]

The other benchmarks are modules of their own (``python -m benchmarks.case_import``,
``benchmarks.open311``, ``benchmarks.routing``, ``benchmarks.identity``); each replaces only
its own section of docs/benchmarks.md, with the machine and the date. Nothing here asserts a
time: the suite's tests check behaviour, these files measure speed.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.report import best, machine, table, write_section

REPO = Path(__file__).resolve().parents[1]




def bench_demo(size: str) -> list[tuple[str, str, str, str]]:
    """The demo build (store, lake and analytics), beside generating the same records alone."""
    from civicpulse.demo import loader
    from civicpulse.demo.generator import DemoCity

    end = date(2026, 11, 26)

    def generate_only() -> None:
        city = DemoCity(seed=2260, size=size, end=end)
        for stream in (city.residents, city.enterprises, city.cases, city.posts):
            for _batch in stream():
                pass

    generate = best(generate_only, repeat=1)
    started = time.perf_counter()
    loader.build(size=size, seed=2260, end=end, quiet=True)
    build = time.perf_counter() - started

    return [
        (
            f"demo build ({size}), whole",
            f"{build:.1f} s",
            f"generation alone {generate:.1f} s",
            f"{build / generate:.1f}x",
        ),
    ]


def bench_cockpit_query() -> list[tuple[str, str, str, str]]:
    """The cockpit's aggregation as one Ibis expression, beside the same SQL in raw DuckDB."""
    import duckdb

    from civicpulse.cases import services as cases
    from civicpulse.core import analytics
    from civicpulse.web.services import figures_expression

    registry = analytics.registry()
    con = analytics.connection()
    expr = figures_expression(registry.table(con, cases.LAKE_TABLE), "239900")
    ibis_time = best(lambda: expr.to_pyarrow())
    glob = str(registry.get(cases.LAKE_TABLE).path) + "/**/part-*.parquet"
    raw = duckdb.connect()
    sql = f"""
        WITH t AS (SELECT * FROM read_parquet('{glob}', hive_partitioning = true))
        SELECT 'city', '239900', month, service_code, count(*) FROM t GROUP BY ALL
        UNION ALL SELECT 'district', district_code, month, service_code, count(*) FROM t
          WHERE district_code IS NOT NULL GROUP BY ALL
        UNION ALL SELECT 'street', street_code, month, service_code, count(*) FROM t
          WHERE street_code IS NOT NULL GROUP BY ALL
        UNION ALL SELECT 'community', community_code, month, service_code, count(*) FROM t
          WHERE community_code IS NOT NULL GROUP BY ALL
    """
    raw_time = best(lambda: raw.sql(sql).to_arrow_table())
    return [
        (
            "cockpit figures over the cases lake, Ibis on DuckDB",
            f"{ibis_time * 1000:.0f} ms",
            f"raw DuckDB SQL {raw_time * 1000:.0f} ms",
            f"{ibis_time / raw_time:.2f}x",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "full"], default="full")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="civicpulse-bench-")
    os.environ["CIVICPULSE_DATA_DIR"] = tmp
    os.environ.pop("CIVICPULSE_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    rows = bench_demo(args.size) + bench_cockpit_query()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"Measured {date.today().isoformat()} on {machine()} by `python -m benchmarks.run "
        f"--size {args.size}`; peak memory of the run {peak:,.0f} MB. Each figure stands beside "
        "a baseline measured in the same run.",
        "",
        *table(rows, ("what", "time", "baseline", "ratio")),
    ]
    write_section("Demo city and cockpit", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
