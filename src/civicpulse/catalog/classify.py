"""Finding personal data in a loaded version: tag its columns and propose a grade.

    findings = scan_version(version)            what each column looks like, counts only
    proposal = apply(version, user=u)           tags stored on the columns, grade proposed

Each column is read from the version's Parquet files: a repeatable sample of up to
``SAMPLE_VALUES`` non-empty values. Every value is tried against the identifier checks of
``identity.checks`` (resident ID numbers, unified social credit codes, mobile numbers: a value
counts only if it passes the full check) and the heuristics for names and addresses. A column
gets a tag when the share of its sampled values that match reaches the kind's threshold
(``THRESHOLDS``); a column whose *name* hints at the kind (姓名, 联系电话, address...) needs a
lower share (``HINTED_THRESHOLDS``), since real columns of names or phones are rarely clean.

Values shaped like an identifier but failing its check (18-digit strings with a wrong check
character, say) are counted per failure kind: a column of them is not tagged, but the count is a
quality signal worth showing.

The values themselves are personal data: findings hold counts and shares only, and at most one
masked example per tag (``110105********1234``). Nothing sampled is logged.

The proposed grade is computed, not stored; a person grades the dataset. The rule
(:func:`propose_grade`):

* core (核心): resident ID numbers together with names, mobiles or addresses - people
  identified by a national number and reachable or locatable;
* important (重要): resident ID numbers alone; mobile numbers; names together with addresses;
  credit codes together with names (enterprises with their contact persons);
* general (一般): otherwise - names alone, addresses alone (an incident's place is not a person),
  credit codes alone (they are public in the enterprise credit register).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
from django.db import transaction
from django.utils.translation import gettext as _

from civicpulse.catalog.models import Dataset, DatasetColumn, DatasetVersion
from civicpulse.core import audit
from civicpulse.identity import services as checks
from civicpulse.lake.sql import parquet_scan, quote_identifier

__all__ = [
    "KINDS",
    "ColumnFinding",
    "KindStat",
    "Proposal",
    "apply",
    "classify_values",
    "propose_grade",
    "scan_version",
]

KINDS = ("resident_id", "credit_code", "mobile", "name", "address")
SAMPLE_VALUES = 10_000
THRESHOLDS = {"resident_id": 0.8, "credit_code": 0.8, "mobile": 0.8, "name": 0.6, "address": 0.6}
HINTED_THRESHOLDS = {
    "resident_id": 0.5,
    "credit_code": 0.5,
    "mobile": 0.5,
    "name": 0.3,
    "address": 0.3,
}
# Column names that say what a column holds, matched on the name lower-cased with spaces and
# dashes as underscores. English hints are whole names, so "Agency Name" is not a person's name.
_HINTS = {
    "resident_id": re.compile(
        r"身份证|证件号|公民身份|^(id_?card|id_?no|id_?number|resident_?id|citizen_?id)$"
    ),
    "credit_code": re.compile(r"信用代码|^(uscc|credit_?code|social_?credit_?code)$"),
    "mobile": re.compile(
        r"手机|电话|联系方式|^(mobile|mobile_?phone|cell|cell_?phone|phone|tel|telephone)$"
    ),
    "name": re.compile(
        r"姓名|名字|联系人|申请人|投诉人|负责人|法定代表人|法人代表|户主|经办人|"
        r"^(name|full_?name|first_?name|last_?name|surname|given_?name|contact|contact_?name|"
        r"person_?name|applicant|resident_?name)$"
    ),
    "address": re.compile(
        r"地址|住址|居住地|户籍地|住所|^(address|addr|street_?address|home_?address|"
        r"incident_?address|full_?address)$"
    ),
}
# Types that cannot hold any of the kinds (an ID number typed as a number is still scanned).
_SKIPPED_TYPES = re.compile(
    r"^(bool|float|double|real|date|time|interval|blob|binary|struct|map|union)|\[\]$"
)
# Values shaped like an identifier, so that a failed check counts as an invalid one.
_SHAPES: dict[str, re.Pattern[str]] = {
    "resident_id": re.compile(r"\d{17}[\dXx]|\d{15}"),
    "credit_code": re.compile(r"[0-9A-Za-z]{2}\d{6}[0-9A-Za-z]{10}"),  # digits: the division
    "mobile": re.compile(r"(\+86|0086)?1\d{10}"),
}


@dataclass(frozen=True, slots=True)
class KindStat:
    """How many sampled values of a column matched one kind.

    ``invalid`` counts values shaped like the identifier (``_SHAPES``) that fail its check, by
    the failure's code (``checksum``, ``birth_date``, ...); empty for names and addresses."""

    kind: str
    matched: int
    share: float
    hinted: bool
    invalid: dict[str, int] = field(default_factory=dict)

    @property
    def invalid_count(self) -> int:
        return sum(self.invalid.values())


@dataclass(frozen=True, slots=True)
class ColumnFinding:
    """What one column looks like: counts, shares, tags, and masked examples of tagged kinds."""

    column: str
    sampled: int
    tags: tuple[str, ...]
    stats: dict[str, KindStat]
    examples: dict[str, str]


@dataclass(frozen=True, slots=True)
class Proposal:
    grade: str
    reasons: list[str]
    findings: list[ColumnFinding]


def _normalised_name(column: str) -> str:
    return re.sub(r"[\s\-]+", "_", checks.normalise(column)).lower()


_CHECKERS = {
    "resident_id": checks.check_resident_id,
    "credit_code": checks.check_credit_code,
    "mobile": checks.check_mobile,
}


NAME_DIVERSITY = 0.3  # distinct names per matching value, at least, without a hint


def classify_values(column: str, values: Iterable[str]) -> ColumnFinding:
    """Count, for one column's sampled values, how many match each kind; tag by the thresholds."""
    values = list(values)
    hinted = {kind: bool(_HINTS[kind].search(_normalised_name(column))) for kind in KINDS}
    matched: Counter[str] = Counter()
    invalid: dict[str, Counter[str]] = {kind: Counter() for kind in _CHECKERS}
    example: dict[str, str] = {}
    heuristics = {"name": checks.looks_like_person_name, "address": checks.looks_like_address}
    looked: dict[str, set[str]] = {kind: set() for kind in heuristics}
    for value in values:
        compact = re.sub(r"\s+", "", checks.to_halfwidth(value))
        # A failing 18-digit value counts against resident IDs only, not also credit codes.
        failed = None
        for kind, check in _CHECKERS.items():
            if not _SHAPES[kind].fullmatch(compact):
                continue
            result = check(value)
            if result.valid:
                matched[kind] += 1
                example.setdefault(kind, checks.mask(kind, result.value))
                failed = None
                break
            failed = failed or (kind, result.code or "other")
        if failed:
            invalid[failed[0]][failed[1]] += 1
        for kind, looks in heuristics.items():
            if looks(value):
                matched[kind] += 1
                looked[kind].add(value)
                example.setdefault(kind, checks.mask(kind, checks.normalise(value)))
    total = len(values)
    # People's names are many; a category ("路灯维修", streetlight repair) that merely looks like
    # one repeats a few values. Without a hint in the column's name, few distinct matches are
    # not names.
    if not hinted["name"] and matched["name"]:
        if len(looked["name"]) < NAME_DIVERSITY * matched["name"]:
            matched["name"] = 0
    stats: dict[str, KindStat] = {}
    tags: list[str] = []
    for kind in KINDS:
        bad = dict(invalid.get(kind, {}))
        if not matched[kind] and not bad:
            continue
        share = matched[kind] / total if total else 0.0
        stats[kind] = KindStat(kind, matched[kind], round(share, 4), hinted[kind], bad)
        threshold = (HINTED_THRESHOLDS if hinted[kind] else THRESHOLDS)[kind]
        if total and share >= threshold:
            tags.append(kind)
    # An ID number's digits are not a mobile number and an address is not a name: the
    # identifier checks are exact, so when one tags the column the heuristics' tags give way.
    if "resident_id" in tags or "credit_code" in tags:
        tags = [t for t in tags if t not in ("mobile", "name", "address")]
    if "address" in tags and "name" in tags:
        tags.remove("name" if stats["address"].share >= stats["name"].share else "address")
    return ColumnFinding(
        column=column,
        sampled=total,
        tags=tuple(tags),
        stats=stats,
        examples={kind: example[kind] for kind in tags if kind in example},
    )



def scan_version(version: DatasetVersion, sample: int = SAMPLE_VALUES) -> list[ColumnFinding]:
    """One finding per column of ``version`` (in column order), from up to ``sample`` non-empty
    values each, drawn by a seeded reservoir sample (the same version gives the same findings)."""
    source = parquet_scan(version.data_glob())
    findings = []
    con = duckdb.connect()
    try:
        for column in version.columns.order_by("position"):
            if _SKIPPED_TYPES.match(column.type.lower()):
                findings.append(ColumnFinding(column.name, 0, (), {}, {}))
                continue
            q = quote_identifier(column.name)
            rows = con.execute(
                f"SELECT CAST({q} AS VARCHAR) FROM {source} "
                f"WHERE {q} IS NOT NULL AND trim(CAST({q} AS VARCHAR)) <> '' "
                f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE (7)"
            ).fetchall()
            findings.append(classify_values(column.name, (r[0] for r in rows)))
    finally:
        con.close()
    return findings


def propose_grade(findings: Iterable[ColumnFinding]) -> tuple[str, list[str]]:
    """The grade the findings call for, and why, in words (see the module docstring)."""
    columns: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for finding in findings:
        for tag in finding.tags:
            columns[tag].append(finding.column)

    def named(kind: str) -> str:
        return ", ".join(columns[kind])

    has = {kind for kind, cols in columns.items() if cols}
    contact = has & {"name", "mobile", "address"}
    reasons: list[str] = []
    if "resident_id" in has and contact:
        reasons.append(
            _(
                "resident ID numbers (%(ids)s) together with %(with)s: people identified by "
                "a national number and reachable or locatable"
            )
            % {"ids": named("resident_id"), "with": _kinds_and_columns(sorted(contact), named)}
        )
        return Dataset.Grade.CORE, reasons
    if "resident_id" in has:
        reasons.append(
            _("resident ID numbers (%(ids)s): direct identifiers of persons")
            % {"ids": named("resident_id")}
        )
    if "mobile" in has:
        reasons.append(
            _("mobile numbers (%(cols)s): direct contact identifiers of persons")
            % {"cols": named("mobile")}
        )
    if {"name", "address"} <= has:
        reasons.append(
            _("names (%(names)s) together with addresses (%(addresses)s): persons locatable")
            % {"names": named("name"), "addresses": named("address")}
        )
    if {"credit_code", "name"} <= has:
        reasons.append(
            _("credit codes (%(codes)s) together with names (%(names)s): enterprises with their "
              "contact persons")
            % {"codes": named("credit_code"), "names": named("name")}
        )  # fmt: skip
    if reasons:
        return Dataset.Grade.IMPORTANT, reasons
    alone = {
        "name": _("names (%(cols)s) alone do not identify a person"),
        "address": _("addresses (%(cols)s) alone describe places, not persons"),
        "credit_code": _("credit codes (%(cols)s) are public in the enterprise credit register"),
    }
    for kind, text in alone.items():
        if kind in has:
            reasons.append(text % {"cols": named(kind)})
    if not reasons:
        reasons.append(_("no personal data columns found"))
    return Dataset.Grade.GENERAL, reasons


def _kinds_and_columns(kinds: list[str], named: Callable[[str], str]) -> str:
    words = {"name": _("names"), "mobile": _("mobile numbers"), "address": _("addresses")}
    return "; ".join(f"{words[k]} ({named(k)})" for k in kinds)


def apply(version: DatasetVersion, *, user=None, sample: int = SAMPLE_VALUES) -> Proposal:
    """Scan ``version``, store each column's tags (replacing earlier ones) and propose a grade.

    ``DatasetColumn.personal_tags`` change, and a tagged column's profile values (samples,
    smallest, largest) are masked in place: the load kept them in clear before anyone knew they
    were personal. Masking is one way; the dataset's grade stays as a person set it. The run is
    audited with the tags per column (no values)."""
    findings = scan_version(version, sample=sample)
    grade, reasons = propose_grade(findings)
    tags = {f.column: list(f.tags) for f in findings}
    with transaction.atomic():
        for column in version.columns.all():
            wanted = tags.get(column.name, [])
            changed = []
            if column.personal_tags != wanted:
                column.personal_tags = wanted
                changed.append("personal_tags")
            if wanted:
                changed += _mask_profile(column, wanted[0])
            if changed:
                column.save(update_fields=changed)
        audit.record(
            user,
            "catalog.personal_data_scanned",
            version,
            detail={"tags": {k: v for k, v in tags.items() if v}, "proposed_grade": grade},
        )
    return Proposal(grade=str(grade), reasons=reasons, findings=findings)


def _mask_profile(column, kind: str) -> list[str]:
    """Mask the column's profile values as ``kind`` (once: a masked value stays as it is)."""
    changed = []
    samples = [v if "*" in str(v) else checks.mask(kind, str(v)) for v in column.samples or []]
    if samples != (column.samples or []):
        column.samples = samples
        changed.append("samples")
    for name in ("min_value", "max_value"):
        value = getattr(column, name)
        if value and "*" not in value:
            setattr(column, name, checks.mask(kind, value))
            changed.append(name)
    return changed


def carry_forward(version: DatasetVersion) -> list[str]:
    """Give a new version's columns the personal-data tags their same-named columns had in the
    dataset's earlier versions (and mask their profile values), so a new load is never served
    in clear while it waits for its own scan. Tags are only ever added here; a scan
    (:func:`apply`) may later remove one. Returns the names of the columns tagged."""
    earlier: dict[str, list[str]] = {}
    for name, tags in (
        DatasetColumn.objects.filter(
            version__dataset_id=version.dataset_id, version__number__lt=version.number
        )
        .exclude(personal_tags=[])
        .order_by("version__number")
        .values_list("name", "personal_tags")
    ):
        earlier[name] = list(tags)  # the latest earlier version's tags win
    tagged = []
    with transaction.atomic():
        for column in version.columns.filter(name__in=list(earlier)):
            wanted = sorted(set(column.personal_tags or []) | set(earlier[column.name]))
            changed = _mask_profile(column, wanted[0])
            if wanted != (column.personal_tags or []):
                column.personal_tags = wanted
                changed.append("personal_tags")
            if changed:
                column.save(update_fields=changed)
                tagged.append(column.name)
    return tagged

