"""Data standards: the city's data elements, the code lists they draw on, and how well a
dataset's versions conform to them.

A :class:`~civicpulse.catalog.models.DataElement` says what a column means and which values it
may hold: a type, a format (regular expression), a maximum length, a code list or a named
identifier check. A dataset's schema is mapped onto elements column by column
(:func:`map_column`), and :func:`check_version` checks a version against those mappings in
DuckDB, over the version's Parquet files, storing a
:class:`~civicpulse.catalog.models.ConformanceReport`.

:func:`seed` writes the national code lists the city's data most often uses, from the files in
``catalog/data`` (facts of the standards, kept as data rather than code):

* ``gender`` — GB/T 2261.1-2003 人的性别代码 (0, 1, 2, 9);
* ``division`` — GB/T 2260 行政区划代码: the 34 province-level divisions, plus every area of
  the store whose code is a 6-digit division code (the city and its districts), refreshed from
  the store on each seed so that the list follows the city's own areas;
* ``industry`` — GB/T 4754-2017 国民经济行业分类: the 20 sections (门类 A-T) and the 97
  divisions (大类 01-97), each division with its section as parent. A value conforms when it is
  either a section letter or a division code.

and the elements built on them (:data:`ELEMENTS`). Seeding twice leaves the same rows.

What a report counts, per mapped column (only kinds that occurred are listed):

* ``missing_column`` — the version has no such column (one violation: nothing else is checked);
* ``required_empty`` — the mapping is required and the value is null or blank;
* ``wrong_type`` — a present value that cannot be read as the element's type;
* ``too_long`` — longer (as text) than the element's maximum length;
* ``format_mismatch`` — does not match the element's format as a whole;
* ``not_in_code_list`` — not a code of the element's code list (compared as text);
* ``fails_identifier_check`` — fails the element's named check (:data:`quality.CHECKS`, the same
  registry the quality rules use), run once per distinct value.

Empty values of a column that is not required are not checked. A value may violate several
kinds; ``failed`` counts the values that violate at least one. Examples are at most
:data:`quality.EXAMPLES` distinct values per kind, most frequent first, masked the way the
identity app masks them when the element has an identifier check or the column is tagged as
personal data. A value is compared as DuckDB writes it as text: a code column the loader read as
numbers has lost its leading zeros (``01`` became ``1``) and is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from django.db import transaction
from django.db.models.functions import Length

from civicpulse.catalog import quality
from civicpulse.catalog.models import (
    CodeItem,
    CodeList,
    ColumnMapping,
    ConformanceReport,
    DataElement,
    Dataset,
    DatasetColumn,
    DatasetVersion,
)
from civicpulse.core import audit
from civicpulse.core.models import Area
from civicpulse.identity import services as identity
from civicpulse.lake.sql import parquet_scan
from civicpulse.lake.sql import quote_identifier as _q

__all__ = [
    "ELEMENTS",
    "KINDS",
    "Mapped",
    "StandardsError",
    "check_version",
    "code_items",
    "elements",
    "latest_report",
    "map_column",
    "report_text",
    "seed",
]

DATA = Path(__file__).parent / "data"
Type = DataElement.Type

MISSING_COLUMN = "missing_column"
REQUIRED_EMPTY = "required_empty"
WRONG_TYPE = "wrong_type"
TOO_LONG = "too_long"
FORMAT_MISMATCH = "format_mismatch"
NOT_IN_CODE_LIST = "not_in_code_list"
FAILS_CHECK = "fails_identifier_check"
KINDS = (MISSING_COLUMN, REQUIRED_EMPTY, WRONG_TYPE, TOO_LONG, FORMAT_MISMATCH,
         NOT_IN_CODE_LIST, FAILS_CHECK)  # fmt: skip

# A present value, as text, that cannot be read as the element's type; text always passes. An
# integer must be whole: DuckDB alone would round "1.5" to 2.
_WRONG_TYPE = {
    Type.INTEGER: "TRY_CAST(v AS BIGINT) IS NULL OR TRY_CAST(v AS DOUBLE) <> TRY_CAST(v AS BIGINT)",
    Type.DECIMAL: "TRY_CAST(v AS DOUBLE) IS NULL",
    Type.DATE: "TRY_CAST(v AS DATE) IS NULL",
    Type.DATETIME: "TRY_CAST(v AS TIMESTAMP) IS NULL",
    Type.BOOLEAN: "TRY_CAST(v AS BOOLEAN) IS NULL",
}
_BATCH = 10_000  # distinct values fetched at a time for a Python check


class StandardsError(Exception):
    """A standards request cannot be done as asked; one line saying why."""


# --------------------------------------------------------------------------- code lists


@dataclass(frozen=True)
class _Item:
    code: str
    name_zh: str
    name_en: str = ""
    parent: str = ""


def _read(filename: str) -> list[_Item]:
    """A code list file: ``code<TAB>name_zh<TAB>name_en[<TAB>parent]``; ``#`` starts a comment."""
    items = []
    for line in (DATA / filename).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            items.append(_Item(*line.split("\t")))
    return items


CODE_LISTS = {
    "gender": {
        "name_zh": "人的性别代码",
        "name_en": "Sex of persons",
        "standard": "GB/T 2261.1-2003",
        "file": "gb_t_2261_1_gender.txt",
    },
    "division": {
        "name_zh": "行政区划代码",
        "name_en": "Administrative division codes",
        "standard": "GB/T 2260",
        "file": "gb_t_2260_provinces.txt",
        "description": "The province-level divisions, and the city's own areas with 6-digit "
        "codes (refreshed from the store on each seed).",
    },
    "industry": {
        "name_zh": "国民经济行业分类",
        "name_en": "Industrial classification for national economic activities",
        "standard": "GB/T 4754-2017",
        "file": "gb_t_4754_2017_industry.txt",
        "description": "The 20 sections (A-T) and the 97 divisions (01-97).",
    },
}

ELEMENTS: tuple[dict, ...] = (
    {"identifier": "resident_id", "name_zh": "公民身份号码", "name_en": "Citizen identity number",
     "data_type": Type.STRING, "max_length": 18, "identifier_check": "resident_id",
     "description": "GB 11643, 18 characters with its check character."},
    {"identifier": "credit_code", "name_zh": "统一社会信用代码",
     "name_en": "Unified social credit code", "data_type": Type.STRING, "max_length": 18,
     "identifier_check": "credit_code", "description": "GB 32100, 18 characters."},
    {"identifier": "mobile", "name_zh": "手机号码", "name_en": "Mobile phone number",
     "data_type": Type.STRING, "identifier_check": "mobile"},
    {"identifier": "gender", "name_zh": "性别代码", "name_en": "Sex",
     "data_type": Type.STRING, "code_list": "gender"},
    {"identifier": "division_code", "name_zh": "行政区划代码", "name_en": "Division code",
     "data_type": Type.STRING, "code_list": "division"},
    {"identifier": "industry_code", "name_zh": "行业代码", "name_en": "Industry code",
     "data_type": Type.STRING, "code_list": "industry",
     "description": "A GB/T 4754-2017 section letter or two-digit division code."},
    {"identifier": "birth_date", "name_zh": "出生日期", "name_en": "Date of birth",
     "data_type": Type.DATE},
    {"identifier": "postcode", "name_zh": "邮政编码", "name_en": "Postal code",
     "data_type": Type.STRING, "format": r"^\d{6}$"},
)  # fmt: skip


def seed(*, user=None) -> dict[str, int]:
    """Write the code lists and data elements of the standards; returns items per list and the
    number of elements. Idempotent: a second seed leaves the same rows, except that the
    ``division`` list follows the store's areas (added, renamed or gone since)."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        for identifier, spec in CODE_LISTS.items():
            items = _read(spec["file"])
            if identifier == "division":
                items = _with_store_areas(items)
            counts[identifier] = _sync(identifier, spec, items)
        lists = {cl.identifier: cl for cl in CodeList.objects.filter(identifier__in=CODE_LISTS)}
        for spec in ELEMENTS:
            values = {k: v for k, v in spec.items() if k not in ("identifier", "code_list")}
            values.setdefault("format", "")
            values.setdefault("max_length", None)
            values.setdefault("identifier_check", "")
            values.setdefault("description", "")
            values["code_list"] = lists.get(spec.get("code_list", ""))
            DataElement.objects.update_or_create(identifier=spec["identifier"], defaults=values)
        counts["elements"] = len(ELEMENTS)
        audit.record(user, "catalog.standards_seeded", object_type="catalog.codelist",
                     detail=counts)  # fmt: skip
    return counts


def _with_store_areas(provinces: list[_Item]) -> list[_Item]:
    """The provinces, then the store's areas with 6-digit codes (a province code keeps its
    official name), each under its parent area or else its province."""
    known = {p.code for p in provinces}
    areas = (
        Area.objects.annotate(code_length=Length("code"))
        .filter(code_length=6)
        .select_related("parent")
        .order_by("code")
    )
    items = list(provinces)
    for area in areas:
        if not area.code.isascii() or not area.code.isdigit() or area.code in known:
            continue
        parent = area.parent.code if area.parent and len(area.parent.code) == 6 else ""
        if not parent and f"{area.code[:2]}0000" in known:
            parent = f"{area.code[:2]}0000"
        items.append(_Item(area.code, area.name_zh, area.name_en, parent))
        known.add(area.code)
    return items


def _sync(identifier: str, spec: dict, items: list[_Item]) -> int:
    code_list, _created = CodeList.objects.update_or_create(
        identifier=identifier,
        defaults={k: spec.get(k, "") for k in ("name_zh", "name_en", "standard", "description")},
    )
    stored = {i.code: i for i in code_list.items.all()}
    wanted = {item.code for item in items}
    code_list.items.exclude(code__in=wanted).delete()
    for position, item in enumerate(items):
        values = {"name_zh": item.name_zh, "name_en": item.name_en,
                  "parent_code": item.parent, "position": position}  # fmt: skip
        row = stored.get(item.code)
        if row is None:
            CodeItem.objects.create(code_list=code_list, code=item.code, **values)
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.save()
    return len(items)


def elements():
    return DataElement.objects.select_related("code_list").order_by("identifier")


def code_items(identifier: str):
    return CodeItem.objects.filter(code_list__identifier=identifier).order_by("position", "code")


# --------------------------------------------------------------------------- mapping


@dataclass
class Mapped:
    """A column mapped to an element, and what to know about it (the column is not in the
    current version yet, ...)."""

    mapping: ColumnMapping
    created: bool
    warnings: list[str] = field(default_factory=list)


def map_column(
    dataset: Dataset, column: str, element: DataElement | str, required: bool = False, *, user=None
) -> Mapped:
    """Map ``column`` of ``dataset`` onto ``element`` (replacing an earlier mapping of the
    column). A column the current version lacks is a warning, not a refusal: the mapping is the
    dataset's schema, which a later version may fill in."""
    column = (column or "").strip()
    if not column:
        raise StandardsError("name the column to map")
    if not isinstance(element, DataElement):
        found = DataElement.objects.filter(identifier=element).first()
        if found is None:
            known = ", ".join(elements().values_list("identifier", flat=True)) or "none"
            raise StandardsError(
                f"no data element {element!r} (known: {known}; "
                "`civicpulse catalog standards seed` writes the standard ones)"
            )
        element = found
    warnings = []
    current = dataset.current_version
    if current is None:
        warnings.append(f"{dataset.slug} has no version yet: {column} is checked once loaded")
    elif column not in [c["name"] for c in current.schema]:
        warnings.append(
            f"column {column} is not in {current} (its columns: "
            f"{_listing([c['name'] for c in current.schema])}); versions without it are "
            "reported as missing it"
        )
    with transaction.atomic():
        mapping, created = ColumnMapping.objects.update_or_create(
            dataset=dataset, column=column, defaults={"element": element, "required": required}
        )
        audit.record(user, "catalog.column_mapped", dataset,
                     detail={"column": column, "element": element.identifier,
                             "required": required, "warnings": warnings})  # fmt: skip
    return Mapped(mapping, created, warnings)


def _listing(names: list[str], most: int = 12) -> str:
    more = f", … {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


# --------------------------------------------------------------------------- checking


def check_version(version: DatasetVersion, *, user=None) -> ConformanceReport:
    """Check ``version`` against its dataset's column mappings and store the report."""
    if version.status == DatasetVersion.Status.DELETED:
        raise StandardsError(f"{version} was deleted: its data is gone")
    mappings = sorted(
        ColumnMapping.objects.filter(dataset=version.dataset).select_related(
            "element", "element__code_list"
        ),
        key=lambda m: m.column,
    )
    if not mappings:
        raise StandardsError(
            f"{version.dataset.slug} has no column mapped to a data element: map some first"
        )
    names = {c["name"] for c in version.schema}
    tags = {
        c.name: c.personal_tags
        for c in DatasetColumn.objects.filter(version=version).only("name", "personal_tags")
        if c.personal_tags
    }
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TEMP VIEW v_data AS SELECT * FROM {parquet_scan(version.data_glob())}")
        _load_codes(con, {m.element.code_list_id for m in mappings if m.element.code_list_id})
        columns = []
        for m in mappings:
            if m.column not in names:
                columns.append(_missing(m))
                continue
            try:
                columns.append(_check_column(con, m, tags.get(m.column, [])))
            except duckdb.Error as exc:  # e.g. an element's format that is no valid regex
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StandardsError(
                    f"column {m.column} cannot be checked against {m.element.identifier}: {first}"
                ) from None
    finally:
        con.close()
    total = sum(v["count"] for c in columns for v in c["violations"].values())
    with transaction.atomic():
        report = ConformanceReport.objects.create(
            version=version,
            created_by=audit.actor_name(user),
            columns=columns,
            violations=total,
        )
        audit.record(user, "catalog.conformance_checked", report,
                     detail={"dataset": version.dataset.slug, "version": version.number,
                             "violations": total,
                             "columns": {c["column"]: {k: v["count"]
                                                       for k, v in c["violations"].items()}
                                         for c in columns}})  # fmt: skip
    return report


def _load_codes(con, list_ids: set[int]) -> None:
    """The code lists the mappings use, as a DuckDB table ``codes(list_id, code)``."""
    rows = list(
        CodeItem.objects.filter(code_list_id__in=list_ids).values_list("code_list_id", "code")
    )
    table = pa.table(
        {"list_id": pa.array([r[0] for r in rows], pa.int64()),
         "code": pa.array([r[1] for r in rows], pa.string())}
    )  # fmt: skip
    con.register("codes_arrow", table)
    con.execute("CREATE TEMP TABLE codes AS SELECT * FROM codes_arrow")
    con.unregister("codes_arrow")


def _entry(mapping: ColumnMapping) -> dict:
    return {
        "column": mapping.column,
        "element": mapping.element.identifier,
        "required": mapping.required,
        "values": 0,
        "empty": 0,
        "failed": 0,
        "masked": False,
        "violations": {},
    }


def _missing(mapping: ColumnMapping) -> dict:
    entry = _entry(mapping)
    entry["violations"][MISSING_COLUMN] = {"count": 1, "examples": []}
    return entry


def _check_column(con, mapping: ColumnMapping, tags: list[str]) -> dict:
    element = mapping.element
    column = _q(mapping.column)
    entry = _entry(mapping)
    present = f"({column} IS NOT NULL AND trim(CAST({column} AS VARCHAR)) <> '')"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE d AS SELECT CAST({column} AS VARCHAR) AS v, count(*) AS n "
        f"FROM v_data WHERE {present} GROUP BY 1"
    )
    empty = con.execute(f"SELECT count(*) FILTER (WHERE NOT {present}) FROM v_data").fetchone()
    entry["empty"] = int(empty[0])
    entry["values"] = int(con.execute("SELECT coalesce(sum(n), 0) FROM d").fetchone()[0])

    conditions: list[tuple[str, str, list]] = []  # (kind, condition on d, parameters)
    if element.data_type in _WRONG_TYPE:
        conditions.append((WRONG_TYPE, _WRONG_TYPE[element.data_type], []))
    if element.max_length:
        conditions.append((TOO_LONG, "length(v) > ?", [element.max_length]))
    if element.format:
        conditions.append((FORMAT_MISMATCH, "NOT regexp_full_match(v, ?)", [element.format]))
    if element.code_list_id:
        conditions.append((NOT_IN_CODE_LIST, "NOT EXISTS (SELECT 1 FROM codes c WHERE "
                           "c.list_id = ? AND c.code = d.v)", [element.code_list_id]))  # fmt: skip
    if element.identifier_check:
        conditions.append((FAILS_CHECK, *_identifier_condition(con, element.identifier_check)))

    kind = _mask_kind(element, tags)
    entry["masked"] = kind is not None
    violations = {}
    if mapping.required and entry["empty"]:
        violations[REQUIRED_EMPTY] = {"count": entry["empty"], "examples": []}
    for name, condition, params in conditions:
        count, examples = con.execute(
            f"SELECT coalesce(sum(n), 0), (list(v ORDER BY n DESC, v))[1:{quality.EXAMPLES}] "
            f"FROM d WHERE {condition}",
            params,
        ).fetchone()
        if count:
            examples = [e[: quality.EXAMPLE_TEXT] for e in examples or []]
            if kind:
                examples = [identity.mask(kind, e) for e in examples]
            violations[name] = {"count": int(count), "examples": examples}
    if conditions:
        either = " OR ".join(f"({c})" for _k, c, _p in conditions)
        params = [p for _k, _c, ps in conditions for p in ps]
        failed = con.execute(f"SELECT coalesce(sum(n), 0) FROM d WHERE {either}", params)
        entry["failed"] = int(failed.fetchone()[0])
    entry["violations"] = {k: violations[k] for k in KINDS if k in violations}
    return entry


def _identifier_condition(con, name: str) -> tuple[str, list]:
    """The condition on ``d`` that a value fails the named check of :data:`quality.CHECKS`: a
    regex in SQL, or the Python predicate run once per distinct value, its failures loaded back
    as a table."""
    check = quality.CHECKS.get(name)
    if check is None:
        known = ", ".join(sorted(quality.CHECKS))
        raise StandardsError(f"data element names an unknown identifier check {name!r} "
                             f"(known: {known})")  # fmt: skip
    if check.pattern is not None:
        return "NOT regexp_full_match(v, ?)", [check.pattern]
    failing: list[str] = []
    cursor = con.execute("SELECT v FROM d")
    while batch := cursor.fetchmany(_BATCH):
        failing.extend(v for (v,) in batch if not _passes(check.predicate, v))
    con.register("failing_arrow", pa.table({"v": pa.array(failing, pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE failing AS SELECT DISTINCT v FROM failing_arrow")
    con.unregister("failing_arrow")
    return "v IN (SELECT v FROM failing)", []


def _passes(predicate, value: str) -> bool:
    try:
        return bool(predicate(value))
    except Exception:  # a check that chokes on a value has not passed it
        return False


def _mask_kind(element: DataElement, tags: list[str]) -> str | None:
    """How examples are masked: as the kind the element's check names (a value failing an ID
    check is still someone's ID with a typo), else as the column's first personal tag; None:
    shown as they are."""
    if element.identifier_check:
        return element.identifier_check
    if tags:
        return str(tags[0])
    return None


# --------------------------------------------------------------------------- reading


def latest_report(version: DatasetVersion) -> ConformanceReport | None:
    return version.conformance_reports.order_by("-created_at", "-id").first()


def report_text(report: ConformanceReport) -> str:
    """The report as text: a line per column, then one per kind of violation with examples."""
    version = report.version
    lines = [
        f"{version.dataset.slug} version {version.number}: {report.violations} violations in "
        f"{len(report.columns)} mapped columns, checked {report.created_at:%Y-%m-%d %H:%M} UTC"
    ]
    for c in report.columns:
        required = ", required" if c["required"] else ""
        lines.append(
            f"- {c['column']} → {c['element']}{required}: {c['values']} values, "
            f"{c['failed']} failing, {c['empty']} empty"
        )
        for kind, found in c["violations"].items():
            shown = f": e.g. {', '.join(repr(e) for e in found['examples'])}"
            lines.append(f"    {kind} {found['count']}{shown if found['examples'] else ''}")
    return "\n".join(lines)
