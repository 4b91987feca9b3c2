"""Data quality on real 311 data: a clean version and one made worse in known ways.

Expected scores are computed here in plain Python from the CSV rows (never by the code under
test), and the known damage is checked as exact differences between the two versions.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from civicpulse.catalog import quality, services
from civicpulse.catalog.models import (
    DatasetColumn,
    ImmutableRecord,
    QualityResult,
    QualityRun,
)
from civicpulse.core.models import AuditEntry
from civicpulse.identity.identifiers import make_resident_id
from tests.support import REPO_ROOT, shared_data

pytestmark = pytest.mark.shared_data

# zone-less times in a department's file are the city's clock
CITY = ZoneInfo(settings.CONFIG.time_zone)

ATLAS = "311/nyc_311_2019-12-31_atlas.csv"
BOROUGHS = ["BRONX", "BROOKLYN", "MANHATTAN", "QUEENS", "STATEN ISLAND"]
BLANKED, DUPLICATED, INVALID = 40, 25, 30
MAX_AGE = 2000


def _load(dataset, source):
    return services.load_version(dataset, source, user=None, progress=False)


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, header, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _worse(header, rows):
    """Blank ``BLANKED`` zips, give ``DUPLICATED`` rows another row's key, and put ``INVALID``
    made-up boroughs where valid ones were."""
    rows = [list(r) for r in rows]
    key, zip_, borough = (header.index(c) for c in ("unique_key", "incident_zip", "borough"))
    with_zip = [i for i, r in enumerate(rows) if r[zip_].strip()]
    for i in with_zip[:BLANKED]:
        rows[i][zip_] = ""
    for i in range(DUPLICATED):
        rows[100 + i][key] = rows[600 + i][key]
    valid = [i for i, r in enumerate(rows) if r[borough] in BOROUGHS]
    for i in valid[-INVALID:]:
        rows[i][borough] = "ATLANTIS"
    return rows


def _expected(header, rows) -> dict[str, tuple[int, int]]:
    """(passed, failed) per rule name, counted in Python from the rows."""
    col = {name: header.index(name) for name in header}
    zips = [r[col["incident_zip"]].strip() for r in rows]
    descriptors = [r[col["descriptor"]].strip() for r in rows]
    cells = zips + descriptors
    keys = Counter(r[col["unique_key"]] for r in rows)
    boroughs = [r[col["borough"]] for r in rows if r[col["borough"]].strip()]
    return {
        "zip complete": (sum(1 for z in zips if z), sum(1 for z in zips if not z)),
        "zip and descriptor complete": (
            sum(1 for c in cells if c),
            sum(1 for c in cells if not c),
        ),
        "key unique": (
            sum(1 for r in rows if keys[r[col["unique_key"]]] == 1),
            sum(1 for r in rows if keys[r[col["unique_key"]]] > 1),
        ),
        "borough valid": (
            sum(1 for b in boroughs if b in BOROUGHS),
            sum(1 for b in boroughs if b not in BOROUGHS),
        ),
    }


def _late(age_days: float, allowed: float) -> float:
    return 1.0 if age_days <= allowed else max(0.0, 1.0 - (age_days - allowed) / allowed)


@pytest.fixture
def atlas(tmp_path):
    source = shared_data(ATLAS)
    header, rows = _read(source)
    return source, header, rows, _write(tmp_path / "worse.csv", header, _worse(header, rows))


def _rules(dataset):
    weights = {"zip complete": 2.0, "zip and descriptor complete": 1.0, "key unique": 3.0,
               "borough valid": 1.0, "created on time": 1.0}  # fmt: skip
    quality.define_rule(dataset, "completeness", ["incident_zip"], name="zip complete",
                        weight=weights["zip complete"], threshold=0.98)  # fmt: skip
    quality.define_rule(dataset, "completeness", "incident_zip,descriptor",
                        name="zip and descriptor complete")  # fmt: skip
    quality.define_rule(dataset, "uniqueness", ["unique_key"], name="key unique",
                        weight=weights["key unique"], threshold=1.0)  # fmt: skip
    quality.define_rule(dataset, "validity", ["borough"], {"allowed": BOROUGHS},
                        name="borough valid")  # fmt: skip
    quality.define_rule(dataset, "timeliness", ["created_date"], {"max_age_days": MAX_AGE},
                        name="created on time")  # fmt: skip
    return weights


def _by_name(run: QualityRun) -> dict[str, QualityResult]:
    return {r.rule.name: r for r in run.results.select_related("rule")}


def test_scores_per_rule_and_dimension_for_a_clean_and_a_damaged_version(new_dataset, atlas):
    source, header, rows, worse = atlas
    dataset = new_dataset("q")
    weights = _rules(dataset)

    first = _load(dataset, source)  # each load with active rules is measured
    second = _load(dataset, worse)
    created = header.index("created_date")
    newest = max(
        dt.datetime.fromisoformat(r[created]).replace(tzinfo=CITY) for r in rows if r[created]
    )
    for version, data in ((first, rows), (second, _worse(header, rows))):
        run = quality.latest_run(version)
        assert run is not None and run.errors == 0 and run.rules == 5
        results = _by_name(run)
        scores = {}
        for name, (passed, failed) in _expected(header, data).items():
            result = results[name]
            assert (result.passed, result.failed) == (passed, failed), name
            assert result.score == pytest.approx(passed / (passed + failed)), name
            assert result.met_threshold == (result.score >= result.rule.threshold)
            scores[name] = result.score
        age = (version.created_at - newest).total_seconds() / 86400
        on_time = results["created on time"]
        assert on_time.score == pytest.approx(_late(age, MAX_AGE))
        assert (on_time.passed, on_time.failed) == ((1, 0) if age <= MAX_AGE else (0, 1))
        scores["created on time"] = on_time.score

        def mean(names, scores=scores):
            return sum(weights[n] * scores[n] for n in names) / sum(weights[n] for n in names)

        assert run.score == pytest.approx(mean(list(scores)))
        assert run.dimension_scores == pytest.approx(
            {
                "completeness": mean(["zip complete", "zip and descriptor complete"]),
                "uniqueness": scores["key unique"],
                "validity": scores["borough valid"],
                "timeliness": scores["created on time"],
            }
        )

    # The damage done is exactly what the second version lost.
    one, two = _by_name(quality.latest_run(first)), _by_name(quality.latest_run(second))
    assert two["zip complete"].failed - one["zip complete"].failed == BLANKED
    assert two["key unique"].failed - one["key unique"].failed == 2 * DUPLICATED
    assert two["borough valid"].failed - one["borough valid"].failed == INVALID
    assert "ATLANTIS" in two["borough valid"].examples
    assert len(two["key unique"].examples) == quality.EXAMPLES
    assert one["key unique"].examples == []
    assert quality.latest_run(second).score < quality.latest_run(first).score

    # Measuring version 1 again adds a run; history keeps one point per version, in order.
    again = services.assess_quality(dataset, 1)
    assert QualityRun.objects.filter(version=first).count() == 2
    points = quality.history(dataset)
    assert [p["version"] for p in points] == [1, 2]
    assert points[0]["run_at"] == again.run_at and points[0]["score"] == again.score
    assert points[1]["dimensions"] == quality.latest_run(second).dimension_scores
    assert AuditEntry.objects.filter(
        action="catalog.quality_assessed", object_id=str(again.pk)
    ).exists()

    # Results are facts of their run.
    result = again.results.first()
    result.score = 1.0
    with pytest.raises(ImmutableRecord):
        result.save()


def test_consistency_against_an_area_list_with_known_missing_codes(new_dataset, atlas, tmp_path):
    source, header, rows, _worse_path = atlas
    zip_ = header.index("incident_zip")
    used = Counter(r[zip_] for r in rows if r[zip_].strip())
    missing = [code for code, _n in used.most_common()[3:6]]  # three codes the list lacks
    areas = _write(
        tmp_path / "zips.csv", ["zip", "name"], [[z, f"area {z}"] for z in used if z not in missing]
    )
    area_list = new_dataset("areas")
    _load(area_list, areas)
    dataset = new_dataset("q")
    _load(dataset, source)
    quality.define_rule(dataset, "consistency", ["incident_zip"],
                        {"dataset": area_list.slug, "column": "zip"}, name="zip known")  # fmt: skip
    quality.define_rule(dataset, "completeness", ["no_such_column"], name="ghost")

    run = services.assess_quality(dataset)
    results = _by_name(run)
    known = results["zip known"]
    lost = sum(used[z] for z in missing)
    assert (known.passed, known.failed) == (sum(used.values()) - lost, lost)
    assert sorted(known.examples) == sorted(missing)
    assert run.dimension_scores == {"consistency": pytest.approx(known.score)}

    ghost = results["ghost"]  # a column this version lacks: an error result, not a crash
    assert ghost.score is None and run.errors == 1
    assert "no_such_column is not in" in ghost.error and "incident_zip" in ghost.error
    assert run.score == pytest.approx(known.score)  # left out of the mean
    assert "ERROR column no_such_column is not in" in quality.report(run)


def test_named_check_and_masked_examples_for_a_personal_column(new_dataset, tmp_path):
    good = [make_resident_id("110105", dt.date(1980, 1, 1) + dt.timedelta(days=i), i + 1)
            for i in range(20)]  # fmt: skip
    bad = [g[:-1] + ("0" if g[-1] != "0" else "1") for g in good[:3]]  # wrong check character
    people = _write(
        tmp_path / "people.csv",
        ["person_id", "note"],
        [[v, "x"] for v in good] + [[v, "y"] for v in bad],
    )
    dataset = new_dataset("people")
    version = _load(dataset, people)
    quality.define_rule(dataset, "validity", ["person_id"], {"check": "resident_id"},
                        name="id valid")  # fmt: skip

    # an ID that fails its check is still someone's ID with a typo: masked even before the
    # column is tagged as personal
    untagged = _by_name(services.assess_quality(dataset))["id valid"]
    assert (untagged.passed, untagged.failed) == (20, 3)
    expected = sorted(f"{b[:6]}********{b[-4:]}" for b in bad)
    assert sorted(untagged.examples) == expected

    column = DatasetColumn.objects.get(version=version, name="person_id")
    column.personal_tags = ["resident_id"]
    column.save(update_fields=["personal_tags"])
    masked = _by_name(services.assess_quality(dataset))["id valid"]
    assert (masked.passed, masked.failed) == (20, 3)
    assert sorted(masked.examples) == expected


def test_timeliness_between_loads(new_dataset, atlas):
    source, _header, _rows, worse = atlas
    dataset = new_dataset("q", frequency="daily")
    by_frequency = quality.define_rule(dataset, "timeliness", name="daily")
    tiny = 1e-9  # days: any real gap between two loads is more than twice this
    quality.define_rule(dataset, "timeliness", [], {"max_age_days": tiny}, name="instant")
    first, second = _load(dataset, source), _load(dataset, worse)

    one, two = _by_name(quality.latest_run(first)), _by_name(quality.latest_run(second))
    assert one["daily"].score == one["instant"].score == 1.0  # a first version is on time
    gap = (second.created_at - first.created_at).total_seconds() / 86400
    assert two["daily"].score == _late(gap, 1) == 1.0 and two["daily"].failed == 0
    assert two["instant"].score == _late(gap, tiny) == 0.0
    assert (two["instant"].passed, two["instant"].failed) == (0, 1)
    assert "previous version 1 loaded" in two["instant"].examples[0]
    assert by_frequency.columns == [] and by_frequency.parameters == {}


@pytest.mark.parametrize(
    ("dimension", "columns", "parameters", "message"),
    [
        ("accuracy", ["a"], {}, "unknown quality dimension"),
        ("validity", ["a"], {"pattern": "x", "allowed": ["x"]}, "exactly one check"),
        ("validity", ["a"], {"pattern": "[unclosed"}, "not a valid regular expression"),
        ("validity", ["a"], {"check": "horoscope"}, "unknown named check"),
        ("completeness", [], {}, "needs at least one column"),
        ("timeliness", ["d"], {}, "give max_age_days"),
        ("timeliness", [], {}, "give max_age_days"),  # irregular dataset: no bound
        ("consistency", ["a"], {"dataset": "nowhere-0", "column": "b"}, "no dataset"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(new_dataset, dimension, columns, parameters,
                                               message):  # fmt: skip
    dataset = new_dataset("bad")
    with pytest.raises(quality.QualityError, match=message):
        quality.define_rule(dataset, dimension, columns, parameters)
    assert not dataset.quality_rules.exists()


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_quality_from_the_command_line(tmp_path, atlas):
    source, header, rows, worse = atlas
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var")}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    assert _cli(env, "migrate").returncode == 0
    setup = (
        "from civicpulse.core.models import Department; "
        "Department.objects.create(code='DSNY', name_zh='环卫局', name_en='Sanitation')"
    )
    assert _cli(env, "manage", "shell", "-c", setup).returncode == 0
    assert _cli(env, "catalog", "register", "nyc311", "--title", "311",
                "--department", "DSNY").returncode == 0  # fmt: skip
    for path in (source, worse):
        loaded = _cli(env, "catalog", "load", "nyc311", str(path))
        assert loaded.returncode == 0, loaded.stderr
    none = _cli(env, "catalog", "quality", "nyc311")
    assert none.returncode == 2 and "no active quality rule" in none.stderr

    define = (
        "from civicpulse.catalog import quality, services; d = services.find('nyc311'); "
        "quality.define_rule(d, 'uniqueness', ['unique_key'], name='key unique')"
    )
    made = _cli(env, "manage", "shell", "-c", define)
    assert made.returncode == 0, made.stderr
    for number in ("1", "2"):
        done = _cli(env, "catalog", "quality", "nyc311", "--version", number)
        assert done.returncode == 0, done.stderr

    failed = _expected(header, _worse(header, rows))["key unique"]
    share = failed[0] / sum(failed) * 100
    assert f"nyc311 version 2: quality {share:.2f}%" in done.stdout
    assert f"- key unique: {share:.2f}% ({failed[0]} passed, {failed[1]} failed" in done.stdout
    history = done.stdout.split("history (latest run per version):")[1].split()
    assert history[:2] == ["v1", "100.00%"] and history[4:6] == ["v2", f"{share:.2f}%"]

    missing = _cli(env, "catalog", "quality", "nyc311", "--version", "9")
    assert missing.returncode == 2 and "has no version 9" in missing.stderr
