"""The master index through the real ``civicpulse`` entry point, in its own data dir and store:
two departments' rolls registered and loaded in the catalog, made sources, synced, linked."""

from __future__ import annotations

import os
import re
from datetime import date
from itertools import chain, islice

import pyarrow.parquet as pq
import pytest

from tests.support import run_cli, shared_data

ROLLS = ("police-household", "hrss-social-insurance")
PEOPLE = 1000

SETUP = """
from civicpulse.core.models import Department
from civicpulse.demo.identity import COLUMNS
from civicpulse.identity import services
for name in {rolls!r}:
    code = name.split("-")[0]
    Department.objects.get_or_create(code=code, defaults={{"name_zh": code}})
    services.ensure_source(name, title=name, kind="resident", department=code,
                           dataset_slug=name, trust=90 if code == "police" else 70,
                           mapping=COLUMNS["resident"])
"""


def _roll_files(directory) -> tuple[dict[str, int], dict[str, int]]:
    """The demo city's first residents as two departments hold them, one Parquet file each;
    the rows per roll, and how many of them fail an identifier check."""
    from civicpulse.demo import people
    from civicpulse.demo.generator import DemoCity
    from civicpulse.demo.identity import roll_table
    from civicpulse.identity import normalise

    city = DemoCity(seed=7, size="small", end=date(2026, 11, 26))
    residents = list(islice(chain.from_iterable(city.residents()), PEOPLE))
    rows: dict[str, list[dict]] = {name: [] for name in ROLLS}
    for batch in people.messy_residents(residents, seed=7, as_of=date(2026, 11, 26)):
        for row in batch:
            if row["roll"] in rows:
                rows[row["roll"]].append(row)
    for name, held in rows.items():
        pq.write_table(roll_table("resident", held), directory / f"{name}.parquet")
    sizes = {name: len(held) for name, held in rows.items()}
    problems = {
        name: sum(bool(normalise.problems("resident", _attributes(r))) for r in held)
        for name, held in rows.items()
    }
    return sizes, problems


def _attributes(row: dict) -> dict:
    return {a: row[a] or None for a in ("name", "id_number", "gender", "birth_date", "phone")}


def _counts(line: str) -> dict[str, str]:
    """``resident full run 3 done: records 10, pairs 4`` -> {"records": "10", "pairs": "4"}."""
    return dict(part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split(", "))


def test_sources_sync_link_and_review_from_the_command_line(tmp_path):
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var"), "CIVICPULSE_LANGUAGE": "en"}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    assert run_cli(env, "migrate").returncode == 0
    made = run_cli(env, "manage", "shell", "-c", SETUP.format(rolls=ROLLS))
    assert made.returncode == 0, made.stderr
    sizes, problems = _roll_files(tmp_path)
    for name in ROLLS:
        code = name.split("-")[0]
        done = run_cli(env, "catalog", "register", name, "--title", name, "--department", code)
        assert done.returncode == 0, done.stderr
        loaded = run_cli(env, "catalog", "load", name, str(tmp_path / f"{name}.parquet"))
        assert loaded.returncode == 0, loaded.stderr

    listed = run_cli(env, "identity", "sources")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[:5] for line in lines] == [
        ["hrss-social-insurance", "resident", "trust", "70", "0"],
        ["police-household", "resident", "trust", "90", "0"],
    ]
    assert lines[1].split()[-2:] == ["dataset", "police-household"]

    one = run_cli(env, "identity", "sync", "police-household")
    assert one.returncode == 0, one.stderr
    n = sizes["police-household"]
    said = re.fullmatch(
        rf"police-household: {n} rows, {n} new, 0 changed, 0 unchanged, 0 rejected, "
        r"(\d+) with problems",
        one.stdout.strip(),
    )
    # the roll's typos that fail a check (an ID digit swapped, a mobile cut short...)
    assert said and int(said.group(1)) == problems["police-household"]

    everything = run_cli(env, "identity", "sync")
    assert everything.returncode == 0, everything.stderr
    out = everything.stdout
    assert f"police-household: {n} rows, 0 new, 0 changed, {n} unchanged" in out
    m = sizes["hrss-social-insurance"]
    assert f"hrss-social-insurance: {m} rows, {m} new, 0 changed" in out
    # the platform's own registers become sources on first sync (empty in this store)
    assert "population-register: 0 rows" in out and "hotline-reporters: 0 rows" in out

    missing = run_cli(env, "identity", "sync", "nope")
    assert missing.returncode == 2
    assert "civicpulse: no record source 'nope'" in missing.stderr

    waiting = run_cli(env, "identity", "review")
    assert waiting.stdout.splitlines() == [
        "resident   0 pairs waiting for review",
        "enterprise 0 pairs waiting for review",
    ]

    linked = run_cli(env, "identity", "link", "--kind", "resident", timeout=900)
    assert linked.returncode == 0, linked.stderr[-3000:]
    line = linked.stdout.strip().splitlines()[-1]
    assert line.startswith("resident full run ") and " done: " in line
    counts = _counts(line)
    assert int(counts["records"]) == n + m
    # a person on both rolls is one entity: fewer clusters than records, no fewer than people
    assert 0.98 * n <= int(counts["clusters"]) < n + m
    assert int(counts["entities_created"]) == int(counts["clusters"])

    nothing = run_cli(env, "identity", "link", "--kind", "enterprise")
    assert nothing.returncode == 0, nothing.stderr[-3000:]
    assert _counts(nothing.stdout.strip().splitlines()[-1])["records"] == "0"

    after = run_cli(env, "identity", "review")
    assert after.returncode == 0
    assert int(after.stdout.splitlines()[0].split()[1]) == int(counts["review_pairs"])

    bad = run_cli(env, "identity", "link", "--kind", "robot")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.shared_data
def test_evaluate_writes_its_figures_into_the_document_given(tmp_path):
    shared_data("er/splink_fake_1000.csv")
    shared_data("er/dedupe_chicago_early_childhood_messy.csv")
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var"), "CIVICPULSE_LANGUAGE": "en"}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    document = tmp_path / "identity.md"
    document.write_text("# Identity\n\nKept as it is.\n", encoding="utf-8")
    done = run_cli(env, "identity", "evaluate", "--output", str(document), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = document.read_text(encoding="utf-8")
    assert text.startswith("# Identity\n\nKept as it is.\n")
    assert "F1" in text and "splink_fake_1000" in text and "<!-- evaluation:begin" in text
    assert f"written to {document}" in done.stdout
