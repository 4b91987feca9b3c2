"""The master index's periodic jobs, run by the real worker over the real queue: two
departments' rolls in the catalog, synced and linked; a re-run does nothing new; a changed row
is linked again alone and keeps its master ID."""

from __future__ import annotations

from datetime import date
from itertools import chain, islice

import pyarrow.parquet as pq
import pytest

from civicpulse.core import queue as q
from civicpulse.identity import records
from civicpulse.identity.models import Entity, Kind, LinkRun, SourceRecord

# slugs of their own: the demo city registers rolls of the same departments
ROLLS = ("police-household-jobs", "hrss-social-insurance-jobs")
PEOPLE = 1500


def _roll_rows() -> dict[str, list[dict]]:
    """Two departments' rolls of the demo city's first residents, with their typos."""
    from civicpulse.demo import people
    from civicpulse.demo.generator import DemoCity

    city = DemoCity(seed=7, size="small", end=date(2026, 11, 26))
    residents = list(islice(chain.from_iterable(city.residents()), PEOPLE))
    rows: dict[str, list[dict]] = {name: [] for name in ROLLS}
    for batch in people.messy_residents(residents, seed=7, as_of=date(2026, 11, 26)):
        for row in batch:
            if f"{row['roll']}-jobs" in rows:
                rows[f"{row['roll']}-jobs"].append(row)
    return rows


def _load(slug: str, rows: list[dict], path) -> None:
    from civicpulse.catalog import services as catalog
    from civicpulse.demo.identity import roll_table

    pq.write_table(roll_table(Kind.RESIDENT, rows), path)
    catalog.load_version(slug, path, progress=False)


@pytest.fixture
def rolls(empty_registers, tmp_path):
    from civicpulse.catalog import services as catalog
    from civicpulse.core.models import Department
    from civicpulse.demo.identity import COLUMNS

    rows = _roll_rows()
    for name in ROLLS:
        code = name.split("-")[0]
        dept, _ = Department.objects.get_or_create(code=code, defaults={"name_zh": code})
        catalog.register_dataset(name, title=name, owner=dept)
        _load(name, rows[name], tmp_path / f"{name}-1.parquet")
        records.ensure_source(
            name, title=name, kind=Kind.RESIDENT, department=dept, dataset_slug=name,
            mapping=COLUMNS[Kind.RESIDENT], trust=90 if code == "police" else 70,
        )  # fmt: skip
    return rows


def _run(name: str) -> dict:
    store = q.StoreQueue()
    job_id = store.enqueue(name)
    assert q.Worker(store, names=[name]).run_one() is True
    state = store.state(job_id)
    assert state["state"] == "done", state["error"]
    return state["result"]


def _codes() -> dict[tuple[str, str], str]:
    return {
        (source, key): code
        for source, key, code in SourceRecord.objects.values_list(
            "source__name", "key", "entity__code"
        )
    }


def test_sync_takes_in_and_links_then_a_rerun_does_nothing_new(rolls, tmp_path):
    total = sum(len(r) for r in rolls.values())
    first = _run("identity.sync")
    for name in ROLLS:
        assert first["sources"][name]["new"] == len(rolls[name])
    assert first["linked_resident"] == total and first["linked_enterprise"] == 0
    assert records.pending() == []
    codes = _codes()
    assert None not in codes.values()
    # a person on both rolls is one entity
    assert len(rolls["police-household-jobs"]) <= len(set(codes.values())) < total
    assert LinkRun.objects.filter(kind=Kind.RESIDENT, mode="full", status="done").count() == 1

    again = _run("identity.sync")
    for name in ROLLS:
        assert again["sources"][name]["unchanged"] == len(rolls[name])
    assert again["linked_resident"] == 0
    assert _codes() == codes
    assert LinkRun.objects.count() == 1

    # a new version of one roll gives a person a new phone: that record alone is linked again,
    # incrementally, and stays with its person
    changed = [dict(r) for r in rolls["hrss-social-insurance-jobs"]]
    changed[0]["phone"] = "13900000000"
    _load("hrss-social-insurance-jobs", changed, tmp_path / "hrss-2.parquet")
    third = _run("identity.sync")
    assert third["sources"]["hrss-social-insurance-jobs"]["changed"] == 1
    assert third["sources"]["police-household-jobs"]["unchanged"] == len(
        rolls["police-household-jobs"]
    )
    assert third["linked_resident"] == 1
    assert records.pending() == []
    assert LinkRun.objects.filter(mode="incremental", status="done").count() == 1
    assert _codes() == codes
    record = SourceRecord.objects.get(
        source__name="hrss-social-insurance-jobs", key=changed[0]["key"]
    )
    assert record.normalised["phone"] == "13900000000" and record.linked_by == "model"


def test_relink_runs_each_kind_once_and_resumes_past_a_kind_already_done(rolls):
    for name in ROLLS:
        records.sync(name)
    result = _run("identity.relink")
    run_id = result["runs"]["resident"]
    assert LinkRun.objects.get(pk=run_id).status == "done"
    assert result["runs"]["enterprise"] is None  # no enterprise records: nothing to train
    codes = _codes()
    assert None not in codes.values()
    assert Entity.objects.filter(status="active").count() == len(set(codes.values()))

    # a relink that stopped after the residents resumes with the enterprises only
    store = q.StoreQueue()
    job_id = store.enqueue("identity.relink")
    store.save_checkpoint(job_id, {"done": {"resident": run_id}}, None)
    assert q.Worker(store, names=["identity.relink"]).run_one() is True
    assert store.state(job_id)["result"]["runs"] == {"resident": run_id, "enterprise": None}
    assert LinkRun.objects.filter(kind=Kind.RESIDENT).count() == 1

    _run("identity.relink")  # a full run again: the same people keep their codes
    assert LinkRun.objects.filter(kind=Kind.RESIDENT, status="done").count() == 2
    assert _codes() == codes
