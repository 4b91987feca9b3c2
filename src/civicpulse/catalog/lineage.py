"""Lineage: which data went into which, recorded by the platform's own jobs as they move it.

    record(("source", "permits.csv", "permits.csv"), ("dataset_version", "12", "permits v3"),
           "catalog.load", {"rows": 1200})
    upstream(node, depth=3)       what a node was made from (nodes and edges, nearest first)
    downstream(node, depth=3)     what was made from it
    graph_for(dataset)            everything around a dataset's versions, for its page

A node is named by ``kind`` + ``ref`` (see :class:`LineageNode`) and made the first time data
flows through it; two jobs recording the same node at once meet at the unique constraint, and
the loser reads the winner's row. An edge is one run of a process: periodic jobs add one per
run, so walks and the page work on the distinct links (source, target, process), each with its
number of runs and the last run's time and detail. Walks are bounded in depth and remember the
nodes they have seen, so a cycle (a table rebuilt from itself) ends them.

``detail`` is small and never personal: row counts, version numbers, identifiers of records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max

from civicpulse.catalog.models import Dataset, DatasetVersion, LineageEdge, LineageNode

__all__ = [
    "Graph",
    "Link",
    "MAX_DEPTH",
    "downstream",
    "graph_for",
    "node",
    "node_for_version",
    "record",
    "upstream",
]

MAX_DEPTH = 10
PAGE_DEPTH = 3

NodeName = tuple[str, str, str]  # (kind, ref, label)


def node(kind: str, ref: str, label: str = "") -> LineageNode:
    """The node ``kind``/``ref``, made if it is new (safe when two jobs make it at once)."""
    if kind not in LineageNode.Kind.values:
        raise ValueError(
            f"unknown lineage node kind {kind!r}: use one of {LineageNode.Kind.values}"
        )
    ref = str(ref)[:500]
    label = (label or "")[:300]
    for _attempt in range(3):
        found = LineageNode.objects.filter(kind=kind, ref=ref).first()
        if found is not None:
            if label and found.label != label:
                LineageNode.objects.filter(pk=found.pk).update(label=label)
                found.label = label
            return found
        try:
            # a savepoint: a lost race leaves the caller's transaction usable
            with transaction.atomic():
                return LineageNode.objects.create(kind=kind, ref=ref, label=label)
        except IntegrityError:
            continue  # another job made it between our read and our insert: read it
    raise IntegrityError(f"lineage node {kind}:{ref} could not be made or read")


def node_for_version(version: DatasetVersion) -> LineageNode:
    return node(
        LineageNode.Kind.DATASET_VERSION,
        str(version.pk),
        f"{version.dataset.slug} v{version.number}",
    )


def record(
    source: NodeName | LineageNode,
    target: NodeName | LineageNode,
    process: str,
    detail: dict[str, Any] | None = None,
) -> LineageEdge:
    """Data of ``source`` went into ``target`` by ``process`` just now; the edge recorded."""
    if not process:
        raise ValueError("a lineage edge names the process that moved the data")
    ends = [n if isinstance(n, LineageNode) else node(*n) for n in (source, target)]
    return LineageEdge.objects.create(
        source=ends[0], target=ends[1], process=process[:100], detail=detail or {}
    )


# --------------------------------------------------------------------------- walks


@dataclass(frozen=True)
class Link:
    """The runs of one process from one node into another: how many, and the last one."""

    source: LineageNode
    target: LineageNode
    process: str
    runs: int
    last_at: datetime
    last_detail: dict = field(default_factory=dict, compare=False)


@dataclass
class Graph:
    nodes: list[LineageNode]
    links: list[Link]

    def __bool__(self) -> bool:
        return bool(self.links)


def _links(where: dict) -> list[tuple[int, int, str, int, datetime]]:
    return list(
        LineageEdge.objects.filter(**where)
        .values("source_id", "target_id", "process")
        .annotate(runs=Count("id"), last_at=Max("at"))
        .values_list("source_id", "target_id", "process", "runs", "last_at")
        .order_by()
    )


def _walk(start: Iterable[LineageNode], depth: int, direction: str) -> tuple[set, dict]:
    """Breadth first from ``start``, ``depth`` steps at most, each node visited once."""
    depth = max(0, min(depth, MAX_DEPTH))
    seen = {n.pk for n in start}
    frontier = set(seen)
    rows: dict[tuple[int, int, str], tuple[int, datetime]] = {}
    for _step in range(depth):
        if not frontier:
            break
        key = "target_id__in" if direction == "up" else "source_id__in"
        found = _links({key: frontier})
        following = set()
        for source_id, target_id, process, runs, last_at in found:
            rows[(source_id, target_id, process)] = (runs, last_at)
            following.add(source_id if direction == "up" else target_id)
        frontier = following - seen
        seen |= following
    return seen, rows


def _graph(node_ids: set[int], rows: dict[tuple[int, int, str], tuple[int, datetime]]) -> Graph:
    nodes = {n.pk: n for n in LineageNode.objects.filter(pk__in=node_ids)}
    links = []
    for (source_id, target_id, process), (runs, last_at) in rows.items():
        last = (
            LineageEdge.objects.filter(source_id=source_id, target_id=target_id, process=process)
            .order_by("-at", "-id")
            .values_list("detail", flat=True)
            .first()
        )
        links.append(Link(nodes[source_id], nodes[target_id], process, runs, last_at, last or {}))
    links.sort(key=lambda link: (link.last_at, link.source.pk, link.target.pk), reverse=True)
    return Graph(sorted(nodes.values(), key=lambda n: (n.kind, n.ref)), links)


def upstream(start: LineageNode, depth: int = PAGE_DEPTH) -> Graph:
    """What ``start`` was made from, up to ``depth`` steps back."""
    return _graph(*_walk([start], depth, "up"))


def downstream(start: LineageNode, depth: int = PAGE_DEPTH) -> Graph:
    """What was made from ``start``, up to ``depth`` steps on."""
    return _graph(*_walk([start], depth, "down"))


def graph_for(dataset: Dataset, depth: int = PAGE_DEPTH) -> Graph:
    """The sources of a dataset's versions and what was made from them (releases, ...)."""
    refs = [str(pk) for pk in dataset.versions.values_list("pk", flat=True)]
    starts = list(LineageNode.objects.filter(kind=LineageNode.Kind.DATASET_VERSION, ref__in=refs))
    if not starts:
        return Graph([], [])
    (up_ids, up_rows), (down_ids, down_rows) = (
        _walk(starts, depth, "up"),
        _walk(starts, depth, "down"),
    )
    return _graph(up_ids | down_ids, {**up_rows, **down_rows})
