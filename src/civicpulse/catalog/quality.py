"""Data quality: rules a dataset's versions are measured against, and the scores they get.

A :class:`~civicpulse.catalog.models.QualityRule` names a dimension, the column(s) it looks at and
its parameters; :func:`assess` measures one version against its dataset's active rules in DuckDB,
over the version's Parquet files (never row by row in Python), and stores a
:class:`~civicpulse.catalog.models.QualityRun` with one
:class:`~civicpulse.catalog.models.QualityResult` per rule. What each dimension measures:

* **completeness** — the share of cells of the column(s) that are neither null nor blank
  (whitespace only). With several columns every cell counts: rows × columns.
* **validity** — the share of present (non-null, non-blank) values that pass one check, given in
  ``parameters``: ``{"pattern": "<RE2 regex, whole value>"}``, ``{"allowed": [...]}`` (compared as
  text), ``{"min": a, "max": b}`` (numbers; either bound may be left out; a value that is not a
  number fails), or ``{"check": "<name>"}`` for a named check of :data:`CHECKS`.
* **uniqueness** — the share of rows whose key (the rule's columns taken together) no other row
  has. Nulls are a key value like any other, so two rows both without a key are duplicates.
* **timeliness** — with a date/time column and ``{"max_age_days": N}``: the age of the version's
  newest value of that column at the version's load time. Without a column: the time between the
  previous version's load and this one, against ``max_age_days`` or else the dataset's update
  frequency (a first version is on time). In both cases, with ``age`` in days::

      score = 1                            if age <= N
      score = max(0, 1 - (age - N) / N)    otherwise (linear decay: 0 once age >= 2N)

  and the counts are 1 passed or 1 failed (the version is on time or not).
* **consistency** — across datasets: the share of present values of this dataset's column found
  in column ``{"column": ...}`` of dataset ``{"dataset": slug}``'s current version (a foreign-key
  check, a DuckDB join of the two versions' Parquet files). Values are compared as text.

Scores are shares in 0..1 (1 when there is nothing to measure: no present value to validate).
The run's score is the weighted mean of its rules' scores and ``dimension_scores`` the same per
dimension; a rule that cannot be measured (a column missing from this version, an invalid pattern,
another dataset without data) gets an *error result* with the reason and no score, and is left
out of the means rather than failing the run.

Runs are kept: measuring a version again adds a run (history by run time) and never touches the
earlier one; a version's score is its latest run's (:func:`history`). Examples of violations are
at most :data:`EXAMPLES` distinct values, most frequent first, masked when the column is tagged as
personal data.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import duckdb
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from civicpulse.catalog.models import (
    Dataset,
    DatasetColumn,
    DatasetVersion,
    QualityResult,
    QualityRule,
    QualityRun,
)
from civicpulse.core import audit
from civicpulse.identity import services as identity_checks
from civicpulse.lake.sql import parquet_scan
from civicpulse.lake.sql import quote_identifier as _q

__all__ = [
    "CHECKS",
    "EXAMPLES",
    "NamedCheck",
    "QualityError",
    "assess",
    "define_rule",
    "history",
    "lateness_score",
    "latest_run",
    "report",
]

EXAMPLES = 5
EXAMPLE_TEXT = 100  # characters of an example value kept
Dimension = QualityRule.Dimension
FREQUENCY_DAYS = {
    Dataset.Frequency.DAILY: 1,
    Dataset.Frequency.WEEKLY: 7,
    Dataset.Frequency.MONTHLY: 31,
    Dataset.Frequency.QUARTERLY: 92,
    Dataset.Frequency.YEARLY: 366,
}


class QualityError(Exception):
    """A rule cannot be defined, or a version measured, as asked; one line saying why."""


class _Unmeasurable(Exception):
    """This rule cannot be measured on this version: becomes an error result."""


# --------------------------------------------------------------------------- named checks


@dataclass(frozen=True)
class NamedCheck:
    """A validity check known by name: an RE2 ``pattern`` run in SQL, or a Python
    ``predicate`` DuckDB calls once per distinct value (for checksums a regex cannot do)."""

    description: str
    pattern: str | None = None
    predicate: Callable[[str], bool] | None = None


CHECKS: dict[str, NamedCheck] = {
    # The identity app's checks: normalised forms accepted, checksums verified.
    "resident_id": NamedCheck(
        "citizen identity number, GB 11643 (with its check character)",
        predicate=lambda v: identity_checks.check_resident_id(v).valid,
    ),
    "credit_code": NamedCheck(
        "unified social credit code, GB 32100 (with its check characters)",
        predicate=lambda v: identity_checks.check_credit_code(v).valid,
    ),
    "mobile": NamedCheck(
        "mainland mobile number", predicate=lambda v: identity_checks.check_mobile(v).valid
    ),
    "postcode": NamedCheck("mainland postal code (6 digits)", pattern=r"[0-9]{6}"),
    "division_code": NamedCheck(
        "GB/T 2260 administrative division code (6 digits)", pattern=r"[1-9][0-9]{5}"
    ),
}


# --------------------------------------------------------------------------- defining rules


def define_rule(
    dataset: Dataset,
    dimension: str,
    columns: Sequence[str] | str = (),
    parameters: dict | None = None,
    *,
    name: str = "",
    weight: float = 1.0,
    threshold: float = 0.95,
    user=None,
) -> QualityRule:
    """Add a rule to ``dataset`` after checking its shape (the columns are checked per version,
    when measured: a rule may name a column that a later version brings)."""
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    columns = list(columns)
    parameters = dict(parameters or {})
    if dimension not in Dimension.values:
        raise QualityError(
            f"unknown quality dimension {dimension!r}: use one of {', '.join(Dimension.values)}"
        )
    if not all(isinstance(c, str) and c for c in columns):
        raise QualityError("columns must be non-empty names")
    if not _is_number(weight) or weight < 0:
        raise QualityError(f"weight must be a number >= 0, not {weight!r}")
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        raise QualityError(f"threshold must be a share between 0 and 1, not {threshold!r}")
    _check_shape(dataset, dimension, columns, parameters)
    with transaction.atomic():
        rule = QualityRule.objects.create(
            dataset=dataset,
            name=name,
            dimension=dimension,
            columns=columns,
            parameters=parameters,
            weight=float(weight),
            threshold=float(threshold),
            created_by=user if getattr(user, "pk", None) else None,
        )
        audit.record(
            user,
            "catalog.quality_rule_defined",
            rule,
            detail={"dataset": dataset.slug, "dimension": dimension, "columns": columns,
                    "parameters": parameters, "weight": weight, "threshold": threshold},
        )  # fmt: skip
    return rule


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_shape(dataset: Dataset, dimension: str, columns: list[str], parameters: dict) -> None:
    def allow(*names: str) -> None:
        extra = sorted(set(parameters) - set(names))
        if extra:
            raise QualityError(
                f"{dimension} rules take no parameter {', '.join(extra)} "
                f"(they take: {', '.join(names) or 'none'})"
            )

    if dimension != Dimension.TIMELINESS and not columns:
        raise QualityError(f"a {dimension} rule needs at least one column")
    if dimension in (Dimension.COMPLETENESS, Dimension.UNIQUENESS):
        allow()
    elif dimension == Dimension.VALIDITY:
        allow("pattern", "allowed", "min", "max", "check")
        _one_column(dimension, columns)
        kinds = [k for k in ("pattern", "allowed", "check") if k in parameters]
        if "min" in parameters or "max" in parameters:
            kinds.append("min/max")
        if len(kinds) != 1:
            raise QualityError(
                "a validity rule takes exactly one check: pattern, allowed, min/max or check "
                f"(given: {', '.join(kinds) or 'none'})"
            )
        if "pattern" in parameters:
            _check_pattern(parameters["pattern"])
        if "allowed" in parameters and not (
            isinstance(parameters["allowed"], list) and parameters["allowed"]
        ):
            raise QualityError("allowed must be a non-empty list of values")
        for bound in ("min", "max"):
            if bound in parameters and not _is_number(parameters[bound]):
                raise QualityError(f"{bound} must be a number, not {parameters[bound]!r}")
        if "check" in parameters and parameters["check"] not in CHECKS:
            raise QualityError(
                f"unknown named check {parameters['check']!r} (known: {', '.join(sorted(CHECKS))})"
            )
    elif dimension == Dimension.TIMELINESS:
        allow("max_age_days")
        if len(columns) > 1:
            raise QualityError("a timeliness rule looks at one date/time column (or none)")
        days = parameters.get("max_age_days")
        if days is None and (columns or dataset.update_frequency not in FREQUENCY_DAYS):
            raise QualityError(
                "give max_age_days (a column's newest value, or a dataset of irregular update "
                "frequency, has no other bound)"
            )
        if days is not None and (not _is_number(days) or days <= 0):
            raise QualityError(f"max_age_days must be a number > 0, not {days!r}")
    else:  # consistency
        allow("dataset", "column")
        _one_column(dimension, columns)
        if not parameters.get("dataset") or not parameters.get("column"):
            raise QualityError(
                "a consistency rule names the other dataset and its column: "
                '{"dataset": "<slug>", "column": "<name>"}'
            )
        if not Dataset.objects.filter(slug=parameters["dataset"]).exists():
            raise QualityError(f"no dataset {parameters['dataset']!r} in the catalog")


def _one_column(dimension: str, columns: list[str]) -> None:
    if len(columns) != 1:
        raise QualityError(f"a {dimension} rule looks at exactly one column")


def _check_pattern(pattern) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise QualityError("pattern must be a non-empty regular expression")
    con = duckdb.connect()
    try:
        con.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchone()
    except duckdb.Error as exc:
        raise QualityError(f"pattern {pattern!r} is not a valid regular expression: "
                           f"{_first_line(exc)}") from None  # fmt: skip
    finally:
        con.close()


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class _Measure:
    passed: int
    failed: int
    score: float
    examples: list[str]
    masked_columns: tuple[str, ...] = ()


def assess(version: DatasetVersion, *, user=None) -> QualityRun:
    """Measure ``version`` against its dataset's active rules and store the run."""
    if version.status == DatasetVersion.Status.DELETED:
        raise QualityError(f"{version} was deleted: its data is gone")
    rules = list(version.dataset.quality_rules.filter(active=True).order_by("id"))
    personal = {
        c.name: c.personal_tags
        for c in DatasetColumn.objects.filter(version=version).only("name", "personal_tags")
        if c.personal_tags
    }
    con = duckdb.connect()
    measured: list[tuple[QualityRule, _Measure | None, str, dt.datetime]] = []
    try:
        # a DATE column's day is the city's day: it starts at the city's midnight
        zone = settings.CONFIG.time_zone.replace("'", "''")
        con.execute(f"SET TimeZone = '{zone}'")
        _register_checks(con)
        con.execute(f"CREATE TEMP VIEW v_data AS SELECT * FROM {parquet_scan(version.data_glob())}")
        for rule in rules:
            try:
                measure = _measure(con, version, rule)
                error = ""
            except _Unmeasurable as exc:
                measure, error = None, str(exc)
            except duckdb.Error as exc:
                measure, error = None, f"could not be measured: {_first_line(exc)}"
            measured.append((rule, measure, error, timezone.now()))
    finally:
        con.close()
    scored = [(rule, m) for rule, m, _e, _t in measured if m is not None]
    dimensions = {
        dim: _weighted([(r, m) for r, m in scored if r.dimension == dim])
        for dim in Dimension.values
        if any(r.dimension == dim for r, _m in scored)
    }
    with transaction.atomic():
        run = QualityRun.objects.create(
            version=version,
            run_at=timezone.now(),
            run_by=audit.actor_name(user),
            score=_weighted(scored),
            dimension_scores=dimensions,
            rules=len(measured),
            errors=sum(1 for _r, m, _e, _t in measured if m is None),
        )
        QualityResult.objects.bulk_create(
            _result(run, rule, measure, error, at, personal)
            for rule, measure, error, at in measured
        )
        audit.record(
            user,
            "catalog.quality_assessed",
            run,
            detail={"dataset": version.dataset.slug, "version": version.number,
                    "score": run.score, "dimensions": dimensions, "rules": run.rules,
                    "errors": run.errors},
        )  # fmt: skip
    return run


def _weighted(scored: Iterable[tuple[QualityRule, _Measure]]) -> float | None:
    pairs = [(rule.weight, m.score) for rule, m in scored]
    total = sum(w for w, _s in pairs)
    if not pairs:
        return None
    if total == 0:  # all weights 0: a plain mean
        return sum(s for _w, s in pairs) / len(pairs)
    return sum(w * s for w, s in pairs) / total


PERSONAL_CHECKS = frozenset({"resident_id", "credit_code", "mobile"})


def _result(run, rule, measure, error, at, personal) -> QualityResult:
    snapshot = {
        "name": rule.name,
        "dimension": rule.dimension,
        "columns": rule.columns,
        "parameters": rule.parameters,
        "weight": rule.weight,
        "threshold": rule.threshold,
    }
    if measure is None:
        return QualityResult(run=run, rule=rule, dimension=rule.dimension, rule_snapshot=snapshot,
                             error=error, measured_at=at)  # fmt: skip
    examples = measure.examples
    tags = [personal[c] for c in measure.masked_columns if c in personal]
    check = (rule.parameters or {}).get("check") if isinstance(rule.parameters, dict) else None
    kind = None
    if check in PERSONAL_CHECKS:
        # what fails an ID check is still someone's ID with a typo: masked whatever the tags say
        kind = check
    elif tags:  # shown only masked, the way the identity app masks its kind of value
        kind = str(tags[0][0]) if isinstance(tags[0], list) and tags[0] else "personal"
    if kind:
        examples = [identity_checks.mask(kind, e) for e in examples]
    return QualityResult(
        run=run,
        rule=rule,
        dimension=rule.dimension,
        rule_snapshot=snapshot,
        passed=measure.passed,
        failed=measure.failed,
        score=measure.score,
        met_threshold=measure.score >= rule.threshold,
        examples=[e[:EXAMPLE_TEXT] for e in examples],
        measured_at=at,
    )


def _measure(con, version: DatasetVersion, rule: QualityRule) -> _Measure:
    names = [c["name"] for c in version.schema]
    missing = [c for c in rule.columns if c not in names]
    if missing:
        raise _Unmeasurable(
            f"column {', '.join(missing)} is not in {version} (its columns: {_listing(names)})"
        )
    match rule.dimension:
        case Dimension.COMPLETENESS:
            return _completeness(con, rule.columns)
        case Dimension.VALIDITY:
            return _validity(con, rule.columns[0], rule.parameters)
        case Dimension.UNIQUENESS:
            return _uniqueness(con, rule.columns)
        case Dimension.TIMELINESS:
            return _timeliness(con, version, rule)
        case Dimension.CONSISTENCY:
            return _consistency(con, rule)
    raise _Unmeasurable(f"unknown dimension {rule.dimension!r}")


def _listing(names: list[str], most: int = 12) -> str:
    more = f", … {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more



def _present(column: str) -> str:
    return f"({_q(column)} IS NOT NULL AND trim(CAST({_q(column)} AS VARCHAR)) <> '')"


def _share(passed: int, failed: int) -> float:
    return passed / (passed + failed) if passed + failed else 1.0


def _completeness(con, columns: list[str]) -> _Measure:
    counts = ", ".join(f"count(*) FILTER (WHERE {_present(c)})" for c in columns)
    row = con.execute(f"SELECT count(*), {counts} FROM v_data").fetchone()
    total = int(row[0]) * len(columns)
    passed = sum(int(n) for n in row[1:])
    return _Measure(passed, total - passed, _share(passed, total - passed), [])


def _tally(con, values_sql: str, ok_sql: str, params: list, columns: tuple[str, ...]) -> _Measure:
    """Count the values of ``values_sql`` (a query of ``v`` and its count ``n``, one row per
    distinct value) by ``ok_sql``, an expression of ``v``; and pick the commonest failures."""
    passed, failed, examples = con.execute(
        f"""
        WITH d AS ({values_sql}), j AS (SELECT v, n, coalesce({ok_sql}, false) AS ok FROM d)
        SELECT coalesce(sum(n) FILTER (WHERE ok), 0),
               coalesce(sum(n) FILTER (WHERE NOT ok), 0),
               (list(v ORDER BY n DESC, v) FILTER (WHERE NOT ok))[1:{EXAMPLES}]
        FROM j
        """,
        params,
    ).fetchone()
    passed, failed = int(passed), int(failed)
    return _Measure(passed, failed, _share(passed, failed), list(examples or []), columns)


def _distinct_present(column: str) -> str:
    return (
        f"SELECT CAST({_q(column)} AS VARCHAR) AS v, count(*) AS n FROM v_data "
        f"WHERE {_present(column)} GROUP BY 1"
    )


def _validity(con, column: str, parameters: dict) -> _Measure:
    values = _distinct_present(column)
    if "pattern" in parameters:
        return _tally(con, values, "regexp_full_match(v, ?)", [parameters["pattern"]], (column,))
    if "allowed" in parameters:
        allowed = [str(a) for a in parameters["allowed"]]
        return _tally(con, values, "list_contains(?::VARCHAR[], v)", [allowed], (column,))
    if "check" in parameters:
        check = CHECKS.get(parameters["check"])
        if check is None:
            raise _Unmeasurable(f"unknown named check {parameters['check']!r}")
        if check.pattern is not None:
            return _tally(con, values, "regexp_full_match(v, ?)", [check.pattern], (column,))
        return _tally(con, values, f"{_function(parameters['check'])}(v)", [], (column,))
    conditions, params = [], []
    if "min" in parameters:
        conditions.append("TRY_CAST(v AS DOUBLE) >= ?")
        params.append(float(parameters["min"]))
    if "max" in parameters:
        conditions.append("TRY_CAST(v AS DOUBLE) <= ?")
        params.append(float(parameters["max"]))
    if not conditions:
        raise _Unmeasurable("a validity rule needs a check: pattern, allowed, min/max or check")
    return _tally(con, values, " AND ".join(conditions), params, (column,))


def _function(check: str) -> str:
    return "cp_check_" + re.sub(r"[^a-z0-9_]", "_", check.lower())


def _register_checks(con) -> None:
    """Make the Python checks callable from SQL on this connection."""
    for name, check in CHECKS.items():
        if check.predicate is not None:
            con.create_function(_function(name), _safe(check.predicate), ["VARCHAR"], "BOOLEAN")


def _safe(predicate: Callable[[str], bool]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return bool(predicate(value))
        except Exception:  # a check that chokes on a value has not passed it
            return False

    return check


def _uniqueness(con, columns: list[str]) -> _Measure:
    keys = ", ".join(_q(c) for c in columns)
    text = " || ' | ' || ".join(f"coalesce(CAST({_q(c)} AS VARCHAR), '∅')" for c in columns)
    passed, failed, examples = con.execute(
        f"""
        WITH k AS (SELECT {text} AS v, count(*) AS n FROM v_data GROUP BY {keys})
        SELECT coalesce(sum(n) FILTER (WHERE n = 1), 0),
               coalesce(sum(n) FILTER (WHERE n > 1), 0),
               (list(v ORDER BY n DESC, v) FILTER (WHERE n > 1))[1:{EXAMPLES}]
        FROM k
        """
    ).fetchone()
    passed, failed = int(passed), int(failed)
    return _Measure(passed, failed, _share(passed, failed), list(examples or []), tuple(columns))


def lateness_score(age_days: float, max_age_days: float) -> float:
    """1 while on time, then falling linearly to 0 at twice the allowed age."""
    if age_days <= max_age_days:
        return 1.0
    return max(0.0, 1.0 - (age_days - max_age_days) / max_age_days)


def _timeliness(con, version: DatasetVersion, rule: QualityRule) -> _Measure:
    dataset = version.dataset
    max_age = rule.parameters.get("max_age_days") or FREQUENCY_DAYS.get(dataset.update_frequency)
    if not max_age:
        raise _Unmeasurable(
            f"{dataset.slug} is updated irregularly: give the rule max_age_days to measure by"
        )
    if rule.columns:
        column = rule.columns[0]
        newest = con.execute(
            f"SELECT max(TRY_CAST({_q(column)} AS TIMESTAMPTZ)) FROM v_data"
        ).fetchone()[0]
        if newest is None:
            raise _Unmeasurable(f"column {column} holds no date/time value in {version}")
        reference = newest
        example = newest.astimezone(dt.UTC).isoformat()
    else:
        previous = dataset.versions.filter(number__lt=version.number).order_by("-number").first()
        if previous is None:  # nothing to be late against
            return _Measure(1, 0, 1.0, [])
        reference = previous.created_at
        example = f"previous version {previous.number} loaded {reference.isoformat()}"
    age = (version.created_at - reference).total_seconds() / 86400
    score = lateness_score(age, float(max_age))
    on_time = age <= max_age
    return _Measure(int(on_time), int(not on_time), score, [] if on_time else [example])


def _consistency(con, rule: QualityRule) -> _Measure:
    column = rule.columns[0]
    slug, other_column = rule.parameters.get("dataset"), rule.parameters.get("column")
    other = Dataset.objects.select_related("current_version").filter(slug=slug).first()
    if other is None:
        raise _Unmeasurable(f"no dataset {slug!r} in the catalog to check {column} against")
    reference = other.current_version
    if reference is None:
        raise _Unmeasurable(f"dataset {slug} has no data yet to check {column} against")
    if other_column not in [c["name"] for c in reference.schema]:
        raise _Unmeasurable(
            f"column {other_column} is not in {reference} "
            f"(its columns: {_listing([c['name'] for c in reference.schema])})"
        )
    values = (
        f"SELECT a.v, a.n, b.v IS NOT NULL AS found FROM ({_distinct_present(column)}) a "
        f"LEFT JOIN (SELECT DISTINCT CAST({_q(other_column)} AS VARCHAR) AS v "
        f"FROM {parquet_scan(reference.data_glob())} WHERE {_q(other_column)} IS NOT NULL) b "
        "ON a.v = b.v"
    )
    return _tally(con, values, "found", [], (column,))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- reading


def latest_run(version: DatasetVersion) -> QualityRun | None:
    return version.quality_runs.order_by("-run_at", "-id").first()


def history(dataset: Dataset) -> list[dict]:
    """Each measured version's latest score, oldest version first: what a chart draws.

    ``[{"version": 1, "loaded_at": ..., "run_at": ..., "score": 0.97,
    "dimensions": {"completeness": 1.0, ...}, "errors": 0}, ...]``"""
    runs = (
        QualityRun.objects.filter(version__dataset=dataset)
        .select_related("version")
        .order_by("version__number", "run_at", "id")
    )
    latest: dict[int, QualityRun] = {}
    for run in runs:  # one row per run, not per data row
        latest[run.version.number] = run
    return [
        {
            "version": number,
            "loaded_at": run.version.created_at,
            "run_at": run.run_at,
            "score": run.score,
            "dimensions": dict(run.dimension_scores),
            "errors": run.errors,
        }
        for number, run in sorted(latest.items())
    ]


def report(run: QualityRun) -> str:
    """The run as text: overall and per-dimension scores, then one line per rule."""
    version = run.version
    lines = [
        f"{version.dataset.slug} version {version.number}: quality "
        f"{_pct(run.score)} ({run.rules} rules, {run.errors} in error), "
        f"measured {run.run_at:%Y-%m-%d %H:%M} UTC",
    ]
    for dim in Dimension.values:
        if dim in run.dimension_scores:
            lines.append(f"  {dim:13} {_pct(run.dimension_scores[dim])}")
    for result in run.results.select_related("rule").order_by("rule_id"):
        snap = result.rule_snapshot
        label = snap.get("name") or f"{snap['dimension']}({', '.join(snap['columns'])})"
        if result.error:
            lines.append(f"- {label}: ERROR {result.error}")
            continue
        mark = "ok" if result.met_threshold else "BELOW THRESHOLD"
        lines.append(
            f"- {label}: {_pct(result.score)} ({result.passed} passed, {result.failed} failed; "
            f"threshold {_pct(snap['threshold'])}) {mark}"
        )
        if result.examples:
            lines.append(f"    e.g. {', '.join(repr(e) for e in result.examples)}")
    return "\n".join(lines)


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.2f}%"
