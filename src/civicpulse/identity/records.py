"""Records in: the departments' registers and rolls taken into the master index as given.

A department hands over rows in its own columns; its ``Source.mapping`` says which column holds
each attribute the index knows (``mapping["key"]`` names the column that identifies a row at the
source). :func:`ingest` keeps each row's attributes exactly as given, with what the identifier
checks found wrong and the normalised form the linker compares, and upserts it on (source, key):
a new row waits to be linked, a changed row keeps its entity but waits to be linked again
(``linked_by`` is emptied), an unchanged row is left alone, so a re-run writes nothing.

A row that cannot be stored at all (not a mapping, no key, a key given twice) is rejected with
its row number and the reason, and nothing is written for it; everything else is written in
batches, each all-or-nothing. An invalid ID number is not a reason to reject: the record is kept
with its problem, never "fixed".

:func:`sync` reads a source's current rows wherever they live: a catalog dataset's current
version, or one of the three registers the platform holds itself (the population register, the
market register, the residents who called the hotline).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from civicpulse.core import audit
from civicpulse.core.models import Department
from civicpulse.identity import linking, normalise
from civicpulse.identity.models import BlockingKey, Kind, Source, SourceRecord

__all__ = [
    "ATTRIBUTES",
    "BATCH",
    "BUILTIN_SOURCES",
    "IngestReport",
    "RecordsError",
    "blocking_keys",
    "candidates",
    "ensure_builtin_sources",
    "ensure_source",
    "frame",
    "index_blocking_keys",
    "ingest",
    "pending",
    "source_rows",
    "sync",
    "sync_all",
]

BATCH = 5_000
KEY_LENGTH = SourceRecord._meta.get_field("key").max_length
BLOCKING_KEY_LENGTH = BlockingKey._meta.get_field("value").max_length

# The attributes the master index knows, per kind (what a mapping maps columns onto).
ATTRIBUTES = {
    Kind.RESIDENT: ("name", "id_number", "gender", "birth_date", "phone", "address"),
    Kind.ENTERPRISE: (
        "name",
        "uscc",
        "legal_representative",
        "phone",
        "address",
        "industry_code",
    ),
}

POPULATION_REGISTER = "population-register"
MARKET_REGISTER = "market-register"
HOTLINE_REPORTERS = "hotline-reporters"

# The registers the platform holds itself: name -> what ensure_source needs. The population and
# market registers are the city's authoritative records; a hotline caller's name is what they
# said on the phone, so it is trusted least.
BUILTIN_SOURCES = {
    POPULATION_REGISTER: {
        "title": "人口信息登记",
        "kind": Kind.RESIDENT,
        "department": "police",
        "trust": 90,
    },
    MARKET_REGISTER: {
        "title": "市场主体登记",
        "kind": Kind.ENTERPRISE,
        "department": "market",
        "trust": 90,
    },
    HOTLINE_REPORTERS: {
        "title": "12345热线来电人",
        "kind": Kind.RESIDENT,
        "department": "urban",
        "trust": 20,
    },
}


class RecordsError(ValueError):
    """A source or its rows cannot be taken in as asked; the message says why in one line."""


@dataclass
class IngestReport:
    """What one ingest did. ``new`` and ``changed`` are the record ids the linker must see."""

    source: str
    rows: int = 0
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: int = 0
    with_problems: int = 0
    # {"row": 1-based row number, "key": the key if any, "reason": why nothing was written}
    rejected: list[dict] = field(default_factory=list)

    @property
    def to_link(self) -> list[int]:
        return [*self.new, *self.changed]

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
            "with_problems": self.with_problems,
            "rejected": len(self.rejected),
        }

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{self.source}: {c['rows']} rows, {c['new']} new, {c['changed']} changed, "
            f"{c['unchanged']} unchanged, {c['rejected']} rejected, "
            f"{c['with_problems']} with problems"
        )


# ============================================================================================
# Sources
# ============================================================================================


def _department(department: Department | str | None) -> Department | None:
    if department is None or isinstance(department, Department):
        return department
    found = Department.objects.filter(code=department).first()
    if found is None:
        raise RecordsError(f"no department with code {department!r}")
    return found


def _check_mapping(mapping: dict) -> dict:
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in mapping.items()
    ):
        raise RecordsError("a mapping maps attribute names onto column names (both text)")
    return dict(mapping)


def ensure_source(
    name: str,
    *,
    title: str,
    kind: str,
    department: Department | str | None = None,
    dataset_slug: str = "",
    trust: int = 50,
    mapping: dict | None = None,
    service_title: str = "",
) -> Source:
    """The source called ``name``, created or brought up to date with what is given.

    A source that already holds records keeps its kind: its records were checked and
    normalised as that kind, and moving them would mix residents with enterprises."""
    if kind not in Kind.values:
        raise RecordsError(f"kind must be one of {', '.join(Kind.values)}, not {kind!r}")
    if not 0 <= int(trust) <= 100:
        raise RecordsError(f"trust is 0-100, not {trust}")
    values = {
        "title": title,
        "kind": kind,
        "department": _department(department),
        "dataset_slug": dataset_slug,
        "trust": int(trust),
        "mapping": _check_mapping(mapping or {}),
        "service_title": service_title,
    }
    with transaction.atomic():
        source = Source.objects.select_for_update().filter(name=name).first()
        if source is None:
            return Source.objects.create(name=name, **values)
        if source.kind != kind and source.records.exists():
            raise RecordsError(
                f"source {name!r} holds {source.kind} records; it cannot become {kind}"
            )
        changed = [k for k, v in values.items() if getattr(source, k) != v]
        for k in changed:
            setattr(source, k, values[k])
        if changed:
            source.save(update_fields=changed)
    return source


def ensure_builtin_sources() -> list[Source]:
    """The three registers the platform holds itself, as sources (their departments, when the
    city has them). One already there is left as the city set it (its trust, its title)."""
    known = set(Department.objects.values_list("code", flat=True))
    existing = {s.name: s for s in Source.objects.filter(name__in=BUILTIN_SOURCES)}
    return [
        existing.get(name)
        or ensure_source(
            name,
            **{**spec, "department": spec["department"] if spec["department"] in known else None},
        )
        for name, spec in BUILTIN_SOURCES.items()
    ]


# ============================================================================================
# Ingest
# ============================================================================================


def _as_given(value: object) -> object:
    """A value as JSON keeps it: text and numbers unchanged, dates in ISO form, blanks None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN: a blank cell read by pandas/arrow
        return None
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _observed(value: object, default: dt.datetime) -> dt.datetime:
    if value in (None, ""):
        return default
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise RecordsError(f"observed_at {value!r} is not an ISO date or time") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


@dataclass
class _Row:
    number: int
    key: str
    attributes: dict
    observed_at: dt.datetime


def _mapped(source: Source, rows: Iterable, default_time: dt.datetime, report: IngestReport):
    """Each acceptable row as a _Row; the others go into ``report.rejected``."""
    mapping = source.mapping or {}
    key_column = mapping.get("key", "key")
    time_column = mapping.get("observed_at", "observed_at")
    columns = {a: mapping.get(a, a) for a in ATTRIBUTES[source.kind]}
    columns.update({a: c for a, c in mapping.items() if a not in ("key", "observed_at")})
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        report.rows += 1
        if not isinstance(row, dict):
            report.rejected.append(
                {
                    "row": number,
                    "key": None,
                    "reason": f"not a row of columns ({type(row).__name__})",
                }
            )
            continue
        key = row.get(key_column)
        key = "" if key is None else str(_as_given(key)).strip()
        if not key:
            report.rejected.append(
                {"row": number, "key": None, "reason": f"no key: column {key_column!r} is empty"}
            )
            continue
        if len(key) > KEY_LENGTH:
            report.rejected.append(
                {"row": number, "key": key[:20], "reason": f"key longer than {KEY_LENGTH}"}
            )
            continue
        if key in seen:
            report.rejected.append(
                {"row": number, "key": key, "reason": f"key already given at row {seen[key]}"}
            )
            continue
        try:
            observed_at = _observed(row.get(time_column), default_time)
        except RecordsError as exc:
            report.rejected.append({"row": number, "key": key, "reason": str(exc)})
            continue
        seen[key] = number
        attributes = {a: _as_given(row.get(c)) for a, c in columns.items() if c in row}
        yield _Row(number, key, attributes, observed_at)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _normaliser(kind: str, gazetteer) -> Callable[[dict], dict]:
    function = normalise.resident if kind == Kind.RESIDENT else normalise.enterprise
    return lambda attributes: function(attributes, gazetteer)


_UPDATED = ("attributes", "normalised", "problems", "observed_at", "linked_by", "updated_at")
_INSERTED = ("source", "key", "kind", *_UPDATED, "explanation", "created_at")


def _execute_many(sql: str, names: tuple[str, ...], rows: list[dict]) -> None:
    """One prepared statement run per row, each value prepared by the model's own field, so
    JSON and times come out right on SQLite and PostgreSQL alike. Plain dicts, not model
    instances, and a value shared by every row (the source, the time) prepared once: at a
    million rows ``bulk_create``/``bulk_update`` would spend most of an ingest on themselves."""
    fields = [SourceRecord._meta.get_field(name) for name in names]
    shared: dict[tuple, object] = {}

    def prepared(f, value):
        if isinstance(value, dict | list):
            return f.get_db_prep_save(value, connection)
        if (f.name, value) not in shared:
            shared[f.name, value] = f.get_db_prep_save(value, connection)
        return shared[f.name, value]

    with connection.cursor() as cursor:
        cursor.executemany(
            sql, [[prepared(f, row[f.name]) for f in fields] + row.get("_pk", []) for row in rows]
        )


def _insert(fresh: list[dict]) -> None:
    fields = [SourceRecord._meta.get_field(name) for name in _INSERTED]
    table = connection.ops.quote_name(SourceRecord._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    _execute_many(f"INSERT INTO {table} ({columns}) VALUES ({marks})", _INSERTED, fresh)


def _update(changed: list[dict]) -> None:
    """The entity stays; the emptied ``linked_by`` asks the linker to look again."""
    table = connection.ops.quote_name(SourceRecord._meta.db_table)
    columns = ", ".join(
        f"{connection.ops.quote_name(SourceRecord._meta.get_field(n).column)} = %s"
        for n in _UPDATED
    )
    _execute_many(f"UPDATE {table} SET {columns} WHERE id = %s", _UPDATED, changed)


def _write_batch(
    source: Source, batch: list[_Row], normalised: Callable[[dict], dict], report: IngestReport
) -> None:
    """Upsert one batch on (source, key), all or nothing."""
    now = timezone.now()
    with transaction.atomic():
        stored = {
            key: (pk, attributes)
            for pk, key, attributes in SourceRecord.objects.filter(
                source=source, key__in=[r.key for r in batch]
            ).values_list("pk", "key", "attributes")
        }
        fresh, changed = [], []
        for row in batch:
            known = stored.get(row.key)
            if known is not None and known[1] == row.attributes:
                report.unchanged += 1
                continue
            problems = normalise.problems(source.kind, row.attributes)
            report.with_problems += bool(problems)
            record = {
                "attributes": row.attributes,
                "normalised": normalised(row.attributes),
                "problems": problems,
                "observed_at": row.observed_at,
                "linked_by": "",
                "updated_at": now,
            }
            if known is None:
                fresh.append(
                    {
                        **record,
                        "source": source.pk,
                        "key": row.key,
                        "kind": source.kind,
                        "explanation": {},
                        "created_at": now,
                    }
                )
            else:
                changed.append({**record, "_pk": [known[0]]})
        if fresh:
            _insert(fresh)
            ids = dict(
                SourceRecord.objects.filter(
                    source=source, key__in=[r["key"] for r in fresh]
                ).values_list("key", "pk")
            )
            report.new.extend(sorted(ids.values()))
            _write_keys(source.kind, [(ids[r["key"]], r["normalised"]) for r in fresh])
        if changed:
            _update(changed)
            pks = [r["_pk"][0] for r in changed]
            for chunk in _chunks(pks):
                BlockingKey.objects.filter(record__in=chunk).delete()
            _write_keys(source.kind, [(r["_pk"][0], r["normalised"]) for r in changed])
            report.changed.extend(pks)


def ingest(
    source: Source,
    rows: Iterable,
    *,
    actor="system",
    observed_at: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH,
) -> IngestReport:
    """Take ``rows`` (dicts in the source's columns) into the index; see the module docstring.

    Rows are streamed: memory stays one batch whatever the number of rows. ``progress`` is told
    how many rows have been read after each batch."""
    from civicpulse.identity.normalise import Gazetteer

    report = IngestReport(source=source.name)
    default_time = observed_at or timezone.now()
    normalised = _normaliser(source.kind, Gazetteer.from_store())
    for batch in _batches(_mapped(source, rows, default_time, report), batch_size):
        _write_batch(source, batch, normalised, report)
        if progress is not None:
            progress(report.rows)
    if progress is not None:
        progress(report.rows)
    audit.record(
        actor,
        "identity.ingest",
        source,
        detail={**report.counts(), "rejected_rows": [r["row"] for r in report.rejected[:100]]},
    )
    return report


# ============================================================================================
# For the linker
# ============================================================================================


def _chunks(ids: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def blocking_keys(kind: str, normalised: Mapping) -> list[tuple[int, str]]:
    """(rule, key) for each of the linker's blocking rules that can pair a record with these
    normalised values, as the store keeps them: a key too long for its column is kept as its
    digest, which two records share exactly when they share the key."""
    return [
        (rule, value if len(value) <= BLOCKING_KEY_LENGTH else _digest(value))
        for rule, value in linking.SPECS[kind].key_values(normalised)
    ]


def _digest(value: str) -> str:
    return "sha1:" + hashlib.sha1(value.encode()).hexdigest()


def _write_keys(kind: str, records: list[tuple[int, Mapping]]) -> None:
    """Insert the blocking keys of ``records`` ((id, normalised) pairs) with one prepared
    INSERT, as the records themselves are written."""
    rows = [
        (pk, kind, rule, value)
        for pk, normalised in records
        for rule, value in blocking_keys(kind, normalised)
    ]
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(BlockingKey._meta.get_field(name).column)
        for name in ("record", "kind", "rule", "value")
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(BlockingKey._meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s)",
            rows,
        )


def index_blocking_keys(kind: str | None = None) -> int:
    """Write every record's blocking keys again (of ``kind``, or of both kinds): for records
    stored before the keys were, or after the linker's blocking rules change. Returns how many
    keys were written."""
    written = 0
    for each in [kind] if kind else list(Kind.values):
        with transaction.atomic():
            BlockingKey.objects.filter(kind=each).delete()
            records = SourceRecord.objects.filter(kind=each).order_by("pk")
            for batch in _batches(
                records.values_list("pk", "normalised").iterator(chunk_size=BATCH), BATCH
            ):
                _write_keys(each, batch)
                written += sum(len(blocking_keys(each, n)) for _pk, n in batch)
    return written


def candidates(kind: str, normalised: Iterable[Mapping]) -> set[int]:
    """Ids of the stored records of ``kind`` that some blocking rule of the linker pairs with
    one of the records whose ``normalised`` values are given (themselves included, when they
    are stored): exactly the records a full blocking would compare them with, found by index
    lookups, whatever the number of records stored."""
    wanted: dict[int, set[str]] = defaultdict(set)
    for values in normalised:
        for rule, value in blocking_keys(kind, values):
            wanted[rule].add(value)
    found: set[int] = set()
    for rule, values in sorted(wanted.items()):
        for chunk in _chunks(sorted(values)):
            found.update(
                BlockingKey.objects.filter(value__in=chunk, rule=rule, kind=kind).values_list(
                    "record_id", flat=True
                )
            )
    return found


def frame(kind: str, *, record_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """The records of ``kind`` (or just ``record_ids``) as the linker takes them: ``record_id``
    (the record's id as text), ``source`` (its name) and the normalised columns."""
    columns = normalise.COLUMNS[kind]
    data: dict[str, list] = {"record_id": [], "source": [], **{c: [] for c in columns}}
    names = dict(Source.objects.values_list("pk", "name"))

    def take(queryset) -> None:
        for pk, source_id, values in queryset.values_list("pk", "source_id", "normalised").iterator(
            chunk_size=BATCH
        ):
            data["record_id"].append(str(pk))
            data["source"].append(names[source_id])
            for c in columns:
                data[c].append(values.get(c))

    records = SourceRecord.objects.filter(kind=kind).order_by("pk")
    if record_ids is None:
        take(records)
    else:
        for chunk in _chunks(sorted(set(record_ids))):
            take(records.filter(pk__in=chunk))
    return pd.DataFrame(data, columns=["record_id", "source", *columns], dtype=object)


def pending(kind: str | None = None) -> list[int]:
    """Ids of records waiting to be linked: new, changed since their last link, or left over by
    a link that did not finish (what makes the sync job resumable)."""
    records = SourceRecord.objects.filter(linked_by="")
    if kind is not None:
        records = records.filter(kind=kind)
    return list(records.order_by("pk").values_list("pk", flat=True))


# ============================================================================================
# Sync: where each source's rows live
# ============================================================================================


def _dataset_rows(slug: str) -> Iterator[dict]:
    """The rows of a catalog dataset's current version, streamed from its Parquet files."""
    import duckdb

    from civicpulse.catalog import services as catalog

    try:
        table = catalog.current_table(slug)
    except catalog.CatalogError as exc:
        raise RecordsError(str(exc)) from None
    with duckdb.connect() as db:
        reader = db.read_parquet(
            table.file_glob, hive_partitioning=bool(table.partition_by)
        ).to_arrow_reader(BATCH)
        for batch in reader:
            for row in batch.to_pylist():
                # the catalog types a column of digits as a number; the department wrote text
                yield {
                    c: str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                    for c, v in row.items()
                }


def _population_rows() -> Iterator[dict]:
    from civicpulse.identity.models import Resident

    fields = ("pk", "name", "id_number", "gender", "birth_date", "phone", "address")
    for pk, name, id_number, gender, birth, phone, address in (
        Resident.objects.order_by("pk").values_list(*fields).iterator(chunk_size=BATCH)
    ):
        yield {
            "key": str(pk),
            "name": name,
            "id_number": id_number,
            "gender": gender,
            "birth_date": birth.isoformat() if birth else None,
            "phone": phone or None,
            "address": address or None,
        }


def _market_rows() -> Iterator[dict]:
    from civicpulse.enterprise import services as enterprise

    return enterprise.register_rows()


def _reporter_rows() -> Iterator[dict]:
    """Residents who called the hotline: only their name and phone (what the call gave)."""
    from civicpulse.cases import services as cases

    for row in cases.reporter_rows():
        yield {
            "key": str(row["reporter_id"]),
            "name": row["name"] or None,
            "phone": row["phone"] or None,
            "observed_at": row["first_case_at"],
        }


_BUILTIN_ROWS: dict[str, Callable[[], Iterable[dict]]] = {
    POPULATION_REGISTER: _population_rows,
    MARKET_REGISTER: _market_rows,
    HOTLINE_REPORTERS: _reporter_rows,
}


def source_rows(source: Source) -> Iterable[dict]:
    """The current rows of ``source``, wherever they live."""
    if source.dataset_slug:
        return _dataset_rows(source.dataset_slug)
    if source.name in _BUILTIN_ROWS:
        return _BUILTIN_ROWS[source.name]()
    raise RecordsError(
        f"source {source.name!r} names no catalog dataset and is not a built-in register"
    )


def sync(
    source: Source | str,
    *,
    actor="system",
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Take in ``source``'s current rows (a re-run with nothing changed writes nothing)."""
    if isinstance(source, str):
        found = Source.objects.filter(name=source).first()
        if found is None:
            known = ", ".join(Source.objects.values_list("name", flat=True)) or "none"
            raise RecordsError(f"no record source {source!r} (known: {known})")
        source = found
    return ingest(source, source_rows(source), actor=actor, progress=progress)


def sync_all(*, actor="system") -> dict[str, IngestReport | str]:
    """Sync every source whose rows the platform can read (a catalog dataset or a built-in
    register, made a source on first use); a source that fails is reported by its reason and
    the others still run."""
    ensure_builtin_sources()
    results: dict[str, IngestReport | str] = {}
    for source in Source.objects.order_by("name"):
        if not source.dataset_slug and source.name not in _BUILTIN_ROWS:
            continue  # its rows are pushed to ingest(), there is nothing to read
        try:
            results[source.name] = sync(source, actor=actor)
        except RecordsError as exc:
            results[source.name] = str(exc)
    return results
