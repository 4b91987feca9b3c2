"""Lineage recorded by the platform's own work: a load (file → version), an open-data release
(version → release), the cockpit's export through the job queue (store → lake) and the hot
issues' membership (posts → issue_posts); the walks up and down, and the dataset page."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from civicpulse.catalog import lineage, services
from civicpulse.catalog.models import LineageEdge, LineageNode, OpenRelease
from civicpulse.core import accounts
from civicpulse.core import queue as q
from civicpulse.core.models import Role
from tests.support import shared_data

pytestmark = [pytest.mark.shared_data, pytest.mark.django_db]

NYC_100 = "311/nyc_311_qsv_100.csv"
BOSTON_100 = "311/boston_311_qsv_100.csv"
PASSWORD = "lineage-secret-1"
_numbers = itertools.count(1)


def _edges(process: str):
    return LineageEdge.objects.filter(process=process).select_related("source", "target")


def test_a_load_records_its_file_as_the_source_of_the_version(new_dataset):
    dataset = new_dataset("lin")
    nyc, boston = shared_data(NYC_100), shared_data(BOSTON_100)
    first = services.load_version(dataset, nyc, progress=False)
    second = services.load_version(dataset, boston, progress=False)

    (edge,) = _edges("catalog.load").filter(target__ref=str(first.pk))
    assert edge.source.kind == "source" and edge.source.ref == str(nyc)
    assert edge.source.label == nyc.name
    assert edge.target.kind == "dataset_version" and edge.target.label == f"{dataset.slug} v1"
    assert edge.detail == {"rows": first.row_count, "version": 1, "kind": "csv"}

    up = lineage.upstream(lineage.node_for_version(second))
    assert [(n.kind, n.ref) for n in up.nodes] == [
        ("dataset_version", str(second.pk)),
        ("source", str(boston)),
    ]
    assert [link.process for link in up.links] == ["catalog.load"]


def test_a_checked_release_records_version_to_release_and_a_refused_one_nothing(new_dataset):
    dataset = new_dataset("lin-rel")
    admin = accounts.create_staff(f"lin-admin-{next(_numbers)}", PASSWORD, Role.DATA_ADMIN)
    version = services.load_version(dataset, shared_data(NYC_100), progress=False)
    release = services.draft_release(
        dataset,
        columns=["Complaint Type", "Borough", "Status"],
        quasi_identifiers=[],
        no_quasi_identifiers=True,
        title="Complaints by borough",
        user=admin,
    )
    assert release.status == OpenRelease.Status.CHECKED
    (edge,) = _edges("catalog.open_release").filter(target__ref=str(release.resource_id))
    assert (edge.source.kind, edge.source.ref) == ("dataset_version", str(version.pk))
    assert edge.target.kind == "open_release" and edge.target.label == "Complaints by borough"
    assert edge.detail == {"rows": release.row_count, "version": 1, "release": release.pk}

    refused = services.draft_release(
        dataset,
        columns=["Complaint Type", "Incident Zip", "Borough"],
        quasi_identifiers=["Incident Zip", "Borough"],
        k=50,
        title="Too fine",
        user=admin,
    )
    assert refused.status == OpenRelease.Status.REFUSED
    assert not LineageNode.objects.filter(ref=str(refused.resource_id)).exists()

    # the whole path from the file to the release, and back
    down = lineage.downstream(LineageNode.objects.get(kind="source", ref=version.source_name))
    assert {(n.kind, n.ref) for n in down.nodes} >= {
        ("dataset_version", str(version.pk)),
        ("open_release", str(release.resource_id)),
    }
    graph = services.lineage_of(dataset.slug)
    assert {link.process for link in graph.links} == {"catalog.load", "catalog.open_release"}


def test_the_cockpit_refresh_through_the_queue_records_cases_into_the_lake(demo_city):
    from civicpulse.cases.models import Case

    before = _edges("cockpit.refresh").count()
    store = q.StoreQueue()
    job_id = store.enqueue("cockpit.refresh")
    worker = q.Worker(store, names=["cockpit.refresh"])
    assert worker.run_one() is True
    state = store.state(job_id)
    assert state["state"] == "done", state["error"]
    edges = list(_edges("cockpit.refresh").order_by("-id"))
    assert len(edges) == before + 1
    edge = edges[0]
    assert (edge.source.kind, edge.source.ref) == ("store_table", Case._meta.db_table)
    assert (edge.target.kind, edge.target.ref) == ("lake_table", "cases")
    assert edge.detail == {"rows": Case.objects.count()} == {"rows": state["result"]["exported"]}


def test_a_hot_issue_refresh_records_posts_into_issue_posts_once_per_run(demo_city):
    from civicpulse.opinion import issues
    from tests.opinion.test_watch import _crisis

    _district, start, _end = _crisis()
    before = _edges("opinion.hot_issues").count()
    result = issues.refresh(now=start + timedelta(days=2))
    assert result["issues"] >= 1
    edges = list(_edges("opinion.hot_issues").order_by("-id"))
    assert len(edges) == before + 1  # one edge for the run, not one per post
    edge = edges[0]
    assert (edge.source.kind, edge.source.ref) == ("lake_table", "posts")
    assert (edge.target.kind, edge.target.ref) == ("lake_table", "issue_posts")
    assert edge.detail["rows"] >= result["issues"]


def test_walks_are_bounded_survive_cycles_and_count_runs():
    n = next(_numbers)
    a, b, c, d = (("lake_table", f"walk-{n}-{x}", x) for x in "abcd")
    lineage.record(a, b, "step.one", {"rows": 1})
    lineage.record(a, b, "step.one", {"rows": 2})
    lineage.record(b, c, "step.two")
    lineage.record(c, d, "step.three")
    lineage.record(d, a, "step.back")  # a cycle
    node_d = lineage.node(*d)

    near = lineage.upstream(node_d, depth=1)
    assert [n.label for n in near.nodes] == ["c", "d"]
    two = lineage.upstream(node_d, depth=2)
    assert sorted(n.label for n in two.nodes) == ["b", "c", "d"]
    around = lineage.downstream(node_d, depth=lineage.MAX_DEPTH + 5)
    assert sorted(n.label for n in around.nodes) == ["a", "b", "c", "d"]
    assert len(around.links) == 4
    (ab,) = [link for link in around.links if link.process == "step.one"]
    assert ab.runs == 2 and ab.last_detail == {"rows": 2}
    assert lineage.upstream(node_d, depth=0).links == []


def test_a_node_is_made_once_and_refuses_unknown_kinds():
    n = next(_numbers)
    with transaction.atomic():
        first = lineage.node("lake_table", f"once-{n}", "once")
        again = lineage.node("lake_table", f"once-{n}")
    assert first.pk == again.pk and again.label == "once"
    assert LineageNode.objects.filter(kind="lake_table", ref=f"once-{n}").count() == 1
    with pytest.raises(ValueError, match="unknown lineage node kind"):
        lineage.node("spreadsheet", "x")
    with pytest.raises(ValueError, match="names the process"):
        lineage.record(("lake_table", "x", ""), ("lake_table", "y", ""), "")


def test_the_dataset_page_shows_the_lineage_panel(client, new_dataset):
    dataset = new_dataset("lin-page")
    admin = accounts.create_staff(f"lin-page-{next(_numbers)}", PASSWORD, Role.DATA_ADMIN)
    empty = new_dataset("lin-empty")
    client.login(username=admin.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("catalog:dataset", args=[empty.slug])).content.decode()
    assert 'id="lineage"' in page and "No lineage recorded yet" in page
    assert "No retention policy" in page

    path = shared_data(NYC_100)
    services.load_version(dataset, path, progress=False)
    services.set_retention(dataset, keep_versions=2, archive_after_days=30, delete_after_days=90)
    page = client.get(reverse("catalog:dataset", args=[dataset.slug])).content.decode()
    assert 'id="lineage-links"' in page
    assert f"source file or database: {path.name}" in page
    assert f"dataset version: {dataset.slug} v1" in page
    assert "catalog.load" in page
    assert "30 days superseded" in page and "90 days superseded" in page
