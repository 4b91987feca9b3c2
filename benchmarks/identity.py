"""The master index at a city's scale: deduplicating a million residents as the departments hold
them, and linking one new record, each beside the baseline a city has without a linker.

    /tmp/cpvenv/bin/python -m benchmarks.identity [--residents 1000000]
                                                  [--store-residents 20000] [--newcomers 50]
                                                  [--no-write]

The residents come from the demo generator and :mod:`civicpulse.demo.people` writes their
departments' messy rolls (about 1.7 records a resident, with the typos and habits listed there);
each row keeps its ``truth`` (the clean ID number), so every figure of quality is scored
pairwise against the generator's truth with :mod:`civicpulse.identity.evaluation`.

Each measured phase runs in a child process of its own, so the peak memory given for it (the
child's ``ru_maxrss``, read with ``wait4``) is that phase's alone and not the sum of what came
before: normalising, the exact-key baseline, Splink's training, Splink's scoring and clustering
with the trained model, and the two incremental measurements. Phases hand each other Parquet
files in a throwaway directory. Nothing here asserts a time; the section written to
docs/benchmarks.md says what was measured, on what, and when.

The baseline is the dedupe a city does without a linker: records with the same valid ID number
(after normalising) are one person, every other record stays alone. It is the same records,
the same two cores and DuckDB, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks.report import REPO, machine, table, write_section

HEADING = "Identity (master index)"
SEED = 2260
AS_OF = date(2026, 11, 26)
RAW_COLUMNS = (
    "roll",
    "key",
    "truth",
    "observed_at",
    "name",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "address",
)


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# ------------------------------------------------------------------------------ data


def _city(residents: int, seed: int = SEED):
    from civicpulse.demo.generator import DemoCity, Size

    return DemoCity(seed=seed, size=Size(residents, 0, 0, 0), end=AS_OF)


def _newcomer_roll(name: str, prefix: str):
    """A roll that holds everyone it is given, typed as carelessly as the health roll: where a
    new record comes from in the incremental measurements."""
    from civicpulse.demo.people import Roll

    return Roll(name, "新登记", "resident", "civil", 50, "", share=1.0, error_scale=1.5,
                key_prefix=prefix, missing={"phone": 0.1, "birth_date": 0.1})  # fmt: skip


def newcomer_rows(city, count: int) -> list[dict]:
    """``count`` new records: half fresh copies of residents the rolls already hold (typed
    again, with their own typos), half strangers from another city of the same generator."""
    from civicpulse.demo.people import messy_residents

    rng = random.Random(SEED)
    known = sorted(rng.sample(range(city.size.residents), count // 2))
    chosen, seen = [], 0
    for batch in city.residents():
        chosen += [batch[i - seen] for i in known if seen <= i < seen + len(batch)]
        seen += len(batch)
    rows = []
    for batch in messy_residents(
        chosen, seed=SEED + 1, rolls=(_newcomer_roll("newcomers-known", "XK"),), as_of=AS_OF
    ):
        rows += batch
    strangers = _city(count - count // 2, seed=SEED + 7)
    for batch in messy_residents(
        strangers.residents(),
        seed=SEED + 1,
        rolls=(_newcomer_roll("newcomers-strangers", "XS"),),
        as_of=AS_OF,
    ):
        rows += batch
    return rows


def gazetteer_of(city):
    from civicpulse.identity.normalise import Gazetteer

    return Gazetteer((a.code, a.name_zh, a.name_en, a.level, a.parent_code) for a in city.areas)


def _write_rows(path: Path, batches) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in RAW_COLUMNS])
    written = 0
    with pq.ParquetWriter(path, schema) as out:
        for rows in batches:
            if rows:
                out.write_table(pa.Table.from_pylist(rows, schema=schema))
                written += len(rows)
    return written


def phase_generate(work: Path, args) -> dict:
    """The rolls of ``--residents`` residents (raw.parquet), and the newcomers (new.parquet)."""
    from civicpulse.demo.people import messy_residents

    started = time.perf_counter()
    city = _city(args.residents)
    records = _write_rows(
        work / "raw.parquet", messy_residents(city.residents(), seed=SEED, as_of=AS_OF)
    )
    _write_rows(work / "new.parquet", [newcomer_rows(city, args.newcomers)])
    return {"records": records, "seconds": time.perf_counter() - started}


def _frame_of(rows, gazetteer):
    """Rows (dicts with the raw columns) as the linker takes them; the truth kept beside."""
    import pandas as pd

    from civicpulse.identity import normalise

    columns = normalise.COLUMNS["resident"]
    data: dict[str, list] = {"record_id": [], "source": [], "truth": [], **{c: [] for c in columns}}
    for row in rows:
        values = normalise.resident(row, gazetteer)
        data["record_id"].append(row["key"])
        data["source"].append(row["roll"])
        data["truth"].append(row["truth"])
        for c in columns:
            data[c].append(values[c])
    return pd.DataFrame(data)


def phase_normalise(work: Path, args) -> dict:
    """Every raw record through ``normalise.resident``: the step each ingest pays per row."""
    import pyarrow.parquet as pq

    rows = pq.read_table(work / "raw.parquet").to_pylist()
    gazetteer = gazetteer_of(_city(0))
    started = time.perf_counter()
    frame = _frame_of(rows, gazetteer)
    seconds = time.perf_counter() - started
    frame.to_parquet(work / "frame.parquet", index=False)
    return {
        "records": len(frame),
        "seconds": seconds,
        "invalid_ids": int((frame["id_valid"] == "0").sum()),
        "missing_ids": int(frame["id_number"].isna().sum()),
    }


# ------------------------------------------------------------------------------ dedupe


def phase_exact(work: Path, args) -> dict:
    """The baseline: one person per valid normalised ID number, in DuckDB."""
    import duckdb

    source = str(work / "frame.parquet")
    con = duckdb.connect()
    started = time.perf_counter()
    clusters = con.sql(
        """
        WITH f AS (SELECT record_id, id_number, id_valid FROM read_parquet(?)),
             g AS (SELECT id_number, min(record_id) AS cluster_id FROM f
                   WHERE id_valid = '1' GROUP BY id_number)
        SELECT f.record_id, coalesce(g.cluster_id, f.record_id) AS cluster_id
        FROM f LEFT JOIN g ON f.id_valid = '1' AND f.id_number = g.id_number
        """,
        params=[source],
    ).to_arrow_table()
    seconds = time.perf_counter() - started
    import pyarrow.parquet as pq

    pq.write_table(clusters, work / "clusters_exact.parquet")
    return {"seconds": seconds}


def _linker_frame(work: Path):
    import pandas as pd

    from civicpulse.identity import linking

    columns = ["record_id", *linking.SPECS["resident"].columns, "source"]
    return pd.read_parquet(work / "frame.parquet", columns=columns)


def phase_train(work: Path, args) -> dict:
    """Splink's unsupervised training alone, as ``linking.run`` does it before scoring."""
    from civicpulse.identity import linking

    frame = _linker_frame(work)
    started = time.perf_counter()
    model = linking.train(frame, "resident")
    seconds = time.perf_counter() - started
    (work / "model.json").write_text(json.dumps(model))
    return {"seconds": seconds}


def phase_score(work: Path, args) -> dict:
    """``linking.link`` with the trained model: blocking, scoring, clustering, explanations."""
    from civicpulse.identity import linking

    frame = _linker_frame(work)
    model = json.loads((work / "model.json").read_text())
    started = time.perf_counter()
    result = linking.link(frame, "resident", model=model)
    seconds = time.perf_counter() - started
    result.clusters.to_parquet(work / "clusters_linker.parquet", index=False)
    counts = {k: v for k, v in result.counts.items() if isinstance(v, int | float | str)}
    return {"seconds": seconds, "counts": counts, "thresholds": linking.DEFAULT_THRESHOLDS}


def phase_evaluate(work: Path, args) -> dict:
    """Pairwise precision, recall and F1 of both dedupes against the generator's truth."""
    import pandas as pd

    from civicpulse.identity.evaluation import pair_counts, scores

    truth = pd.read_parquet(work / "frame.parquet", columns=["record_id", "truth"])
    truth = truth.rename(columns={"truth": "cluster_id"})
    out = {"entities": int(truth["cluster_id"].nunique())}
    for name in ("exact", "linker"):
        clusters = pd.read_parquet(work / f"clusters_{name}.parquet")
        counts = pair_counts(clusters, truth)
        out[name] = {
            **counts,
            **scores(counts),
            "clusters": int(clusters["cluster_id"].nunique()),
        }
    return out


# ------------------------------------------------------------------------------ one new record


def phase_match(work: Path, args) -> dict:
    """``linking.match_new`` of each newcomer, one at a time, against every record."""
    import pandas as pd
    import pyarrow.parquet as pq

    from civicpulse.identity import linking

    existing = _linker_frame(work)
    known = pd.read_parquet(work / "frame.parquet", columns=["record_id", "truth"])
    truth_of = dict(zip(known["record_id"], known["truth"], strict=True))
    model = json.loads((work / "model.json").read_text())
    rows = pq.read_table(work / "new.parquet").to_pylist()
    new = _frame_of(rows, gazetteer_of(_city(0)))
    link = linking.DEFAULT_THRESHOLDS["link"]
    known_truths = set(truth_of.values())
    latencies, found, wrong, strangers_alone, known = [], 0, 0, 0, 0
    for i in range(len(new)):
        one = new.iloc[[i]]
        started = time.perf_counter()
        pairs = linking.match_new(one, existing, "resident", model)
        latencies.append(time.perf_counter() - started)
        truth = one["truth"].iloc[0]
        linked = {truth_of[r] for r in pairs.loc[pairs["match_probability"] >= link, "record_r"]}
        if truth in known_truths:
            known += 1
            found += truth in linked
        else:
            strangers_alone += not linked
        wrong += bool(linked - {truth})
    return {
        "latencies": latencies,
        "existing": len(existing),
        "known": known,
        "found": found,
        "strangers": len(new) - known,
        "strangers_alone": strangers_alone,
        "wrong": wrong,
    }


def phase_store(work: Path, args) -> dict:
    """Through the store: the rolls of ``--store-residents`` ingested into a fresh SQLite store,
    a first full run, then each newcomer ingested and placed by ``master.link_new`` alone; then
    the baseline, a full re-run of the same store."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from civicpulse.core.areas import AreaRecord, save_tree
    from civicpulse.demo.people import ROLLS, messy_residents
    from civicpulse.identity import master, records
    from civicpulse.identity.models import SourceRecord

    city = _city(args.store_residents)
    save_tree(
        AreaRecord(a.code, a.level, a.name_zh, a.name_en, a.parent_code, a.polygon, a.heated)
        for a in city.areas
    )
    by_roll: dict[str, list[dict]] = {}
    for batch in messy_residents(city.residents(), seed=SEED, as_of=AS_OF):
        for row in batch:
            by_roll.setdefault(row["roll"], []).append(row)
    started = time.perf_counter()
    for roll in ROLLS:
        if roll.kind == "resident" and roll.name in by_roll:
            source = records.ensure_source(roll.name, title=roll.title, kind="resident",
                                           trust=roll.trust)  # fmt: skip
            records.ingest(source, by_roll[roll.name], actor="benchmark")
    ingest_seconds = time.perf_counter() - started
    stored = SourceRecord.objects.count()
    started = time.perf_counter()
    first = master.run_full("resident", actor="benchmark")
    first_seconds = time.perf_counter() - started

    newcomers = records.ensure_source("newcomers", title="新登记", kind="resident", trust=50)
    truth_of = {row["key"]: row["truth"] for rows in by_roll.values() for row in rows}
    truths = set(truth_of.values())
    latencies, actions, right, wrong, on_roll = [], [], 0, 0, 0
    for row in newcomer_rows(city, args.newcomers):
        report = records.ingest(newcomers, [row], actor="benchmark")
        started = time.perf_counter()
        placed = master.link_new(report.to_link, actor="benchmark")
        latencies.append(time.perf_counter() - started)
        actions += [p["action"] for p in placed]
        # whom the newcomer's entity holds besides it, by the generator's truth
        others = {
            truth_of[key]
            for key in SourceRecord.objects.filter(entity__code=placed[0]["entity"])
            .exclude(source=newcomers)
            .values_list("key", flat=True)
        }
        on_roll += row["truth"] in truths
        right += row["truth"] in others
        wrong += bool(others - {row["truth"]})

    started = time.perf_counter()
    again = master.run_full("resident", actor="benchmark")
    full_seconds = time.perf_counter() - started
    return {
        "records": stored,
        "ingest_seconds": ingest_seconds,
        "first_seconds": first_seconds,
        "first_counts": {k: v for k, v in first.counts.items() if isinstance(v, int | float)},
        "latencies": latencies,
        "actions": {a: actions.count(a) for a in sorted(set(actions))},
        "on_roll": on_roll,
        "right": right,
        "wrong": wrong,
        "full_seconds": full_seconds,
        "full_counts": {k: v for k, v in again.counts.items() if isinstance(v, int | float)},
    }


PHASES = {
    "generate": phase_generate,
    "normalise": phase_normalise,
    "exact": phase_exact,
    "train": phase_train,
    "score": phase_score,
    "evaluate": phase_evaluate,
    "match": phase_match,
    "store": phase_store,
}


# ------------------------------------------------------------------------------ the runner


def measure(phase: str, work: Path, args, env: dict | None = None) -> dict:
    """Run one phase in a child process; its result plus the child's wall time and peak RSS."""
    command = [
        sys.executable, "-m", "benchmarks.identity", "--phase", phase, "--work", str(work),
        "--residents", str(args.residents), "--store-residents", str(args.store_residents),
        "--newcomers", str(args.newcomers),
    ]  # fmt: skip
    progress(f"{phase} ...")
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env=env or os.environ.copy())
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode:
        raise RuntimeError(f"phase {phase} failed with exit code {child.returncode}")
    result = json.loads((work / f"{phase}.json").read_text())
    result["wall"] = wall
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    progress(f"{phase}: {wall:.1f} s, peak {result['peak_mb']:,.0f} MB")
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _quality(s: dict) -> str:
    return f"F1 {s['f1']:.4f} (P {s['precision']:.4f}, R {s['recall']:.4f})"


def section(args, r: dict) -> list[str]:
    gen, norm, exact, train, score = (r[k] for k in ("generate", "normalise", "exact", "train",
                                                      "score"))  # fmt: skip
    ev, match = r["evaluate"], r["match"]
    linker_seconds = train["seconds"] + score["seconds"]
    linker_peak = max(train["peak_mb"], score["peak_mb"])
    lat = match["latencies"]
    rows = [
        (
            "normalise (normalise.resident per record)",
            f"{norm['records'] / norm['seconds']:,.0f} records/s ({norm['seconds']:.0f} s), "
            f"peak {norm['peak_mb']:,.0f} MB",
            "—",
            "—",
        ),
        (
            "Splink training (u by sampling, m by EM)",
            f"{train['seconds']:.0f} s, peak {train['peak_mb']:,.0f} MB",
            "—",
            "—",
        ),
        (
            "Splink scoring + clustering (linking.link with the model)",
            f"{score['seconds']:.0f} s, peak {score['peak_mb']:,.0f} MB, "
            f"{score['counts']['comparisons']:,} pairs scored",
            "—",
            "—",
        ),
        (
            "dedupe, time (training + scoring)",
            f"{linker_seconds:.0f} s",
            f"exact valid-ID key {exact['seconds']:.1f} s",
            f"{linker_seconds / exact['seconds']:,.0f}x",
        ),
        (
            "dedupe, peak memory",
            f"{linker_peak:,.0f} MB",
            f"exact key {exact['peak_mb']:,.0f} MB",
            f"{linker_peak / exact['peak_mb']:.1f}x",
        ),
        (
            "dedupe, pairwise quality vs the generator's truth",
            _quality(ev["linker"]),
            "exact key " + _quality(ev["exact"]),
            f"F1 {ev['linker']['f1'] - ev['exact']['f1']:+.4f}",
        ),
        (
            f"one new record, linking.match_new against {match['existing']:,} records",
            f"median {_ms(statistics.median(lat))}, p95 {_ms(percentile(lat, 95))}",
            f"re-scoring all with the model {score['seconds']:.0f} s",
            f"{score['seconds'] / statistics.median(lat):,.0f}x faster",
        ),
    ]
    store = r.get("store")
    if store:
        slat = store["latencies"]
        rows.append(
            (
                f"one new record through the store, master.link_new ({store['records']:,} records)",
                f"median {_ms(statistics.median(slat))}, p95 {_ms(percentile(slat, 95))}",
                f"master.run_full {store['full_seconds']:.1f} s",
                f"{store['full_seconds'] / statistics.median(slat):,.0f}x faster",
            )
        )
    thresholds = score["thresholds"]
    lines = [
        f"Measured {date.today().isoformat()} on {machine()} (two cores shared with other work) "
        f"by `python -m benchmarks.identity --residents {args.residents}` (1-minute load "
        f"average {r['load_before']:.1f} before it started, {r['load_after']:.1f} when it "
        "ended). "
        f"{args.residents:,} synthetic residents (demo generator, seed {SEED}) on "
        f"{norm['records']:,} records of five departments' rolls "
        f"({ev['entities']:,} people on them; {norm['invalid_ids']:,} ID numbers failing their "
        f"check, {norm['missing_ids']:,} missing); generating them took {gen['seconds']:.0f} s "
        "(not counted). Each phase ran in a process of its own: its peak memory is its alone. "
        f"Link threshold {thresholds['link']}, review threshold {thresholds['review']}.",
        "",
        *table(rows),
        "",
        f"- Normalising is pure Python (pinyin, ID checks, the gazetteer), one core: "
        f"{norm['records'] / norm['seconds']:,.0f} records/s; its peak holds every raw row as "
        "a dict and the normalised frame at once (an ingest streams batches instead).",
        f"- The linker costs {linker_seconds / exact['seconds']:,.0f} times the exact-key "
        f"dedupe's time and {linker_peak / exact['peak_mb']:.1f} times its memory; it buys "
        f"recall {ev['linker']['recall']:.4f} against {ev['exact']['recall']:.4f} (the records "
        "whose ID is missing or mistyped) at precision "
        f"{ev['linker']['precision']:.4f} against {ev['exact']['precision']:.4f}.",
        f"- Of {match['known']} new copies of known residents, match_new linked "
        f"{match['found']} to the right resident at the link threshold; "
        f"{match['strangers_alone']} of {match['strangers']} people on no roll stayed alone; "
        f"{match['wrong']} were linked to someone else. Latency includes DuckDB's blocking joins "
        "over the whole frame held in pandas.",
    ]
    if store:
        counts = store["actions"]
        lines.append(
            f"- Through the store (SQLite, {args.store_residents:,} residents' rolls ingested "
            f"with records.ingest in {store['ingest_seconds']:.0f} s): each newcomer ingested "
            "then placed alone by master.link_new with the last full run's model "
            f"({', '.join(f'{v} {k}' for k, v in counts.items())}): {store['right']} of the "
            f"{store['on_roll']} whose person was on a roll joined that person, "
            f"{store['wrong']} joined someone else; the baseline is what a "
            f"city would otherwise run, master.run_full, which retrains "
            f"({store['full_counts'].get('training_seconds', 0):.1f} s of its "
            f"{store['full_seconds']:.1f} s)."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--store-residents", type=int, default=20_000)
    parser.add_argument("--newcomers", type=int, default=50)
    parser.add_argument("--skip-store", action="store_true", help="leave out the store figure")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the docs")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = PHASES[args.phase](args.work, args)
        (args.work / f"{args.phase}.json").write_text(json.dumps(result, default=str))
        return

    work = Path(tempfile.mkdtemp(prefix="civicpulse-bench-identity-"))
    results: dict = {"load_before": os.getloadavg()[0]}
    for phase in ("generate", "normalise", "exact", "train", "score", "evaluate", "match"):
        results[phase] = measure(phase, work, args)
    if not args.skip_store:
        env = {**os.environ, "CIVICPULSE_DATA_DIR": str(work / "store")}
        env.pop("CIVICPULSE_DATABASE_URL", None)
        env.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
        (work / "store").mkdir()
        results["store"] = measure("store", work, args, env)
    results["load_after"] = os.getloadavg()[0]
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    lines = section(args, results)
    if not args.no_write:
        write_section(HEADING, lines)
    print("\n".join(lines))
    for path in work.glob("*.parquet"):
        path.unlink()
    shutil.rmtree(work / "store", ignore_errors=True)
    progress(f"the phases' results are in {work / 'results.json'}")


if __name__ == "__main__":
    main()
