"""Entity resolution with Splink: which records, across the departments, are one person or firm.

A :class:`Spec` says how one kind of record is compared (the comparisons and their levels), which
pairs are compared at all (blocking rules, chosen so that a million residents stay tractable on
two cores), and how the model trains itself without labels: u by random sampling with a fixed
seed, the prior from deterministic rules, m by expectation maximisation over a couple of blocking
rules. :data:`SPECS` holds the two the master index uses, ``resident`` and ``enterprise``, over
the normalised columns of ``identity.normalise``; the evaluation builds its own specs for the
English benchmark files and runs them through the same :func:`run`.

The comparisons are written once, in DuckDB's SQL. On Spark the Scala similarity functions that
ship inside Splink are loaded into the running session under DuckDB's names, so the same trained
model scores the same pairs on both engines (see docs/identity.md).

The result of a run is plain pandas plus the trained model as a JSON-able dict: a later
:func:`match_new` (one new record against the existing ones) or a re-run reuses it without
training, so incremental links need no full run.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import pyarrow as pa

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ENGINES",
    "PAIR_COLUMNS",
    "SPECS",
    "LinkResult",
    "Spec",
    "comparison",
    "damerau_level",
    "equal",
    "exact_level",
    "explain",
    "jaro_winkler_level",
    "level",
    "levenshtein_level",
    "link",
    "match_new",
    "null_level",
    "present",
    "run",
    "train",
]

DEFAULT_THRESHOLDS = {"link": 0.95, "review": 0.5}
ENGINES = ("duckdb", "spark")
SEED = 20261126
U_MAX_PAIRS = 5e6
# u is sampled from about this many pairs per record, but never fewer than U_MIN_PAIRS (below
# that the rare levels, an equal ID among strangers, are seen too seldom to estimate) and
# never more than U_MAX_PAIRS: a demo of 15 thousand records samples a fifth of what a
# million do, with the same u to within sampling noise.
U_PAIRS_PER_RECORD = 50
U_MIN_PAIRS = 1e6
EM_MAX_PAIRS = 2e6
WEIGHT_LIMIT = 1000.0


# --------------------------------------------------------------------------------------------
# Levels, written in DuckDB's SQL (Spark gets the same function names, see _spark_api)
# --------------------------------------------------------------------------------------------


def null_level(*columns: str) -> dict:
    condition = " or ".join(f"{c}_l is null or {c}_r is null" for c in columns)
    return {"sql_condition": condition, "label_for_charts": "missing", "is_null_level": True}


def level(condition: str, label: str) -> dict:
    return {"sql_condition": condition, "label_for_charts": label}


def exact_level(column: str, label: str | None = None) -> dict:
    return level(f"{column}_l = {column}_r", label or f"{column} equal")


def present(column: str) -> str:
    return f"{column}_l is not null and {column}_r is not null"


def jaro_winkler_level(column: str, threshold: float) -> dict:
    return level(
        f"jaro_winkler_similarity({column}_l, {column}_r) >= {threshold}",
        f"{column} Jaro-Winkler >= {threshold}",
    )


def damerau_level(column: str, distance: int) -> dict:
    return level(
        f"damerau_levenshtein({column}_l, {column}_r) <= {distance}",
        f"{column} {distance} edit{'s' if distance > 1 else ''} or transposition",
    )


def levenshtein_level(column: str, distance: int) -> dict:
    return level(
        f"levenshtein({column}_l, {column}_r) <= {distance}",
        f"{column} within {distance} edit{'s' if distance > 1 else ''}",
    )


# The starting m of "different": true matches rarely disagree outright. EM replaces it when its
# training blocks show such matches; when they never do (the usual case for the fields a typo
# spares), Splink would otherwise weigh the level at about zero, and two members of a household
# (one phone, one address) with an ID missing on one side would link on those alone.
DIFFERENT_M = 0.005


def else_level() -> dict:
    return {"sql_condition": "ELSE", "label_for_charts": "different", "m_probability": DIFFERENT_M}


def comparison(name: str, levels: list[dict], description: str = "") -> dict:
    """One comparison in Splink's settings form: its levels from most to least alike."""
    return {
        "output_column_name": name,
        "comparison_description": description or name,
        "comparison_levels": [*levels, else_level()],
    }


def _phone(column: str = "phone") -> dict:
    # The last eight digits survive the forms a number is written in (+86, a missing area code).
    return comparison(
        column,
        [
            null_level(column),
            exact_level(column),
            level(f"right({column}_l, 8) = right({column}_r, 8)", f"{column} last 8 equal"),
        ],
    )


def _address() -> dict:
    return comparison(
        "address",
        [
            null_level("address"),
            exact_level("address"),
            jaro_winkler_level("address", 0.9),
            level(f"{present('area_code')} and area_code_l = area_code_r", "same area"),
        ],
    )


# A surname alone ("张先生") is worth one bit: log2(m / u) = log2(0.01 / 0.005). Such a name
# almost only meets another through a shared phone, and a phone is a household's, whose members
# mostly share the surname too: given the number, the same surname is about twice as likely for
# the same person as for a relative (1 against 1/2), not the ~30 times a random pair would say.
# The evidence depends on the phone, which the model's independent fields cannot express, and no
# training block holds a caller (none has an ID number or a birth date), so it is fixed, not
# trained: with the number's own weight, such a caller's pair lands between the review and link
# thresholds, for a person to decide.
SURNAME_ONLY_M = 0.01
SURNAME_ONLY_U = 0.005


def _given_names(lvl: dict) -> dict:
    """A name level that needs a whole name on both sides: a surname alone never counts as
    the same name, only as :func:`_surname_only_level`."""
    guard = "surname_only_l is null and surname_only_r is null"
    return {**lvl, "sql_condition": f"({lvl['sql_condition']}) and {guard}"}


def _surname_only_level() -> dict:
    return {
        **level(
            "(surname_only_l = '1' or surname_only_r = '1') and "
            "surname_pinyin_l = surname_pinyin_r",
            "only a surname given, the same surname",
        ),
        "m_probability": SURNAME_ONLY_M,
        "u_probability": SURNAME_ONLY_U,
        "fix_m_probability": True,
        "fix_u_probability": True,
    }


def _resident_comparisons() -> list[dict]:
    return [
        comparison(
            "name",
            [
                null_level("name_pinyin"),
                _given_names(exact_level("name")),
                _given_names(exact_level("name_pinyin", "same pinyin (homophone)")),
                _given_names(exact_level("name_sound", "same sound (accent-folded pinyin)")),
                _surname_only_level(),
                _given_names(jaro_winkler_level("name_pinyin", 0.92)),
                _given_names(jaro_winkler_level("name_pinyin", 0.8)),
            ],
        ),
        comparison(
            "id_number",
            [
                null_level("id_number"),
                exact_level("id_number"),
                # Two valid numbers that share division and birth date but differ beyond a
                # typo in the sequence are two people (namesakes born the same day), so the
                # parts count only together with a one-character slip.
                level(
                    "substr(id_number_l, 1, 14) = substr(id_number_r, 1, 14) and "
                    "damerau_levenshtein(id_number_l, id_number_r) <= 1",
                    "same division and birth date, sequence digit typo",
                ),
                damerau_level("id_number", 1),
                damerau_level("id_number", 2),
            ],
        ),
        comparison(
            "birth_date",
            [null_level("birth_date"), exact_level("birth_date"), damerau_level("birth_date", 1)],
        ),
        comparison("gender", [null_level("gender"), exact_level("gender")]),
        _phone(),
        _address(),
    ]


def _enterprise_comparisons() -> list[dict]:
    return [
        comparison(
            "uscc",
            [
                null_level("uscc"),
                exact_level("uscc"),
                level(
                    f"{present('uscc_org')} and uscc_org_l = uscc_org_r",
                    "same organisation code",
                ),
                damerau_level("uscc", 1),
            ],
        ),
        comparison(
            "name",
            [
                null_level("name"),
                exact_level("name"),
                level(f"{present('name_core')} and name_core_l = name_core_r", "same core name"),
                level(
                    f"{present('name_pinyin')} and name_pinyin_l = name_pinyin_r",
                    "same pinyin (homophone)",
                ),
                level(
                    f"{present('name_core')} and "
                    "jaro_winkler_similarity(name_core_l, name_core_r) >= 0.9",
                    "core name Jaro-Winkler >= 0.9",
                ),
                jaro_winkler_level("name_pinyin", 0.85),
            ],
        ),
        comparison(
            "legal_rep",
            [
                null_level("legal_rep_pinyin"),
                exact_level("legal_rep"),
                exact_level("legal_rep_pinyin", "same pinyin (homophone)"),
                jaro_winkler_level("legal_rep_pinyin", 0.9),
            ],
        ),
        _phone(),
        _address(),
        comparison("industry_code", [null_level("industry_code"), exact_level("industry_code")]),
    ]


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


# A blocking rule is a conjunction of equalities of one column, or of one column's first
# characters, between the two sides: ``l.c = r.c`` or ``substr(l.c, 1, n) = substr(r.c, 1, n)``.
# Its key parts are the same expressions without the side: ``c`` or ``substr(c, 1, n)``.
_KEY_PART = re.compile(r"^(?:(\w+)|substr\((\w+), 1, (\d+)\))$")
_KEY_SEPARATOR = "\x1f"


def _sided(part: str, side: str) -> str:
    column, prefixed, length = _KEY_PART.match(part).groups()
    return f"{side}.{column}" if column else f"substr({side}.{prefixed}, 1, {length})"


def _key_parts(rule: str) -> tuple[str, ...]:
    """The column expressions ``rule`` equates; a rule of any other shape is refused."""
    parts = []
    for condition in re.split(r"\s+and\s+", rule.strip(), flags=re.IGNORECASE):
        left, _, right = (side.strip() for side in condition.partition("="))
        part = left.replace("l.", "", 1)
        if not (_KEY_PART.match(part) and left == _sided(part, "l") and right == _sided(part, "r")):
            raise ValueError(
                f"blocking rule {rule!r} is not a conjunction of equalities of columns or "
                "their first characters, so no stored key can stand for it"
            )
        parts.append(part)
    return tuple(parts)


def _part_value(part: str, values) -> str | None:
    """A key part's value for one record (None: missing, so the part pairs nothing)."""
    column, prefixed, length = _KEY_PART.match(part).groups()
    value = values.get(column or prefixed)
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value) if column else str(value)[: int(length)]


@dataclass(frozen=True)
class Spec:
    """How one kind of record is linked.

    ``columns`` are those the comparisons and rules read (a frame must have them all);
    ``blocking`` decides which pairs are scored at all; ``deterministic`` (with its estimated
    ``recall``) sets the prior; ``training`` are the blocking rules EM learns m over, each
    leaving out the fields it blocks on.
    """

    kind: str
    columns: tuple[str, ...]
    comparisons: list[dict]
    blocking: list[str]
    deterministic: list[str]
    recall: float
    training: list[str]
    retain: tuple[str, ...] = field(default=())

    def settings(self) -> dict:
        """Untrained Splink settings for this spec."""
        return {
            "link_type": "dedupe_only",
            "unique_id_column_name": "record_id",
            "comparisons": self.comparisons,
            "blocking_rules_to_generate_predictions": [
                {"blocking_rule": rule} for rule in self.blocking
            ],
            # gamma_ (the level) and mw_ (its weight) per comparison explain each pair
            "retain_matching_columns": True,
            "retain_intermediate_calculation_columns": True,
            "additional_columns_to_retain": list(self.retain),
            "em_convergence": 0.0001,
            "max_iterations": 25,
        }

    def comparison_names(self) -> list[str]:
        return [c["output_column_name"] for c in self.comparisons]

    @cached_property
    def blocking_keys(self) -> list[tuple[str, ...]]:
        """Each blocking rule as the column expressions it equates, in rule order.

        Read from the SQL rules themselves, so the rules Splink runs and the keys a store
        looks candidates up by are one definition: a rule no key can stand for is refused
        here rather than silently missed by an incremental link."""
        return [_key_parts(rule) for rule in self.blocking]

    def key_values(self, values) -> list[tuple[int, str]]:
        """(rule index, key) for each blocking rule that can pair a record with these
        normalised ``values``: two records share a key of a rule exactly when the rule pairs
        them. A rule with a missing part gives no key, as SQL's ``null = null`` is not true."""
        keys = []
        for index, parts in enumerate(self.blocking_keys):
            found = [_part_value(part, values) for part in parts]
            if None not in found:
                keys.append((index, _KEY_SEPARATOR.join(found)))
        return keys


def equal(*columns: str) -> str:
    """A blocking rule: every column present and equal on both sides."""
    return " and ".join(f"l.{c} = r.{c}" for c in columns)


RESIDENT = Spec(
    kind="resident",
    columns=(
        "name",
        "name_pinyin",
        "name_sound",
        "surname_pinyin",
        "surname_only",
        "id_number",
        "birth_date",
        "gender",
        "phone",
        "address",
        "area_code",
    ),
    comparisons=_resident_comparisons(),
    # Each rule joins on a key that a typo rarely breaks in every field at once; none of them
    # is a bare name or area, whose blocks grow with the square of a city's size.
    blocking=[
        equal("id_number"),
        equal("phone"),
        equal("name_sound", "birth_date"),
        equal("name_pinyin", "area_code"),
        "substr(l.id_number, 1, 14) = substr(r.id_number, 1, 14) and l.name_sound = r.name_sound",
    ],
    deterministic=[equal("id_number", "name_pinyin"), equal("phone", "name_pinyin", "birth_date")],
    recall=0.7,
    training=[equal("id_number"), equal("name_sound", "birth_date")],
    retain=("source",),
)

ENTERPRISE = Spec(
    kind="enterprise",
    columns=(
        "name",
        "name_pinyin",
        "name_core",
        "uscc",
        "uscc_org",
        "legal_rep",
        "legal_rep_pinyin",
        "phone",
        "address",
        "area_code",
        "industry_code",
    ),
    comparisons=_enterprise_comparisons(),
    blocking=[
        equal("uscc"),
        equal("uscc_org"),
        equal("phone"),
        equal("name_core"),
        equal("legal_rep_pinyin", "area_code"),
    ],
    deterministic=[equal("uscc", "name_core"), equal("uscc", "legal_rep_pinyin")],
    recall=0.7,
    training=[equal("uscc"), equal("name_core")],
    retain=("source",),
)

SPECS = {"resident": RESIDENT, "enterprise": ENTERPRISE}


# --------------------------------------------------------------------------------------------
# Results and explanations
# --------------------------------------------------------------------------------------------

PAIR_COLUMNS = ["record_l", "record_r", "match_probability", "match_weight", "explanation"]


@dataclass
class LinkResult:
    """What a run found: scored pairs (at or above the review threshold), clusters of every
    record at the link threshold, the trained model, and counts to report."""

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    model: dict
    counts: dict


def _levels_by_gamma(model: dict) -> dict[str, dict[int, str]]:
    """Each comparison's gamma value -> level label, as Splink numbers them (null = -1, then
    the most alike level highest)."""
    labels: dict[str, dict[int, str]] = {}
    for comp in model["comparisons"]:
        levels = comp["comparison_levels"]
        plain = [lvl for lvl in levels if not lvl.get("is_null_level")]
        mapping = {-1: "missing"}
        for index, lvl in enumerate(plain):
            mapping[len(plain) - 1 - index] = lvl.get("label_for_charts") or lvl["sql_condition"]
        labels[comp["output_column_name"]] = mapping
    return labels


def _weight(value: float | None) -> float:
    """A weight fit for JSON (and PostgreSQL's jsonb): a level that never occurred among
    non-matches would weigh infinity, shown as a large finite number instead."""
    if value is None or math.isnan(value):
        return 0.0
    return round(max(-WEIGHT_LIMIT, min(WEIGHT_LIMIT, float(value))), 4)


def prior_weight(model: dict) -> float:
    """The match weight every pair starts from: the log-odds that two random records match."""
    p = model["probability_two_random_records_match"]
    return round(math.log2(p / (1 - p)), 4)


def explain(
    row: dict | pd.Series, model: dict, labels: dict[str, dict[int, str]] | None = None
) -> dict:
    """Which fields agreed and with what weight, for one scored pair (a row of Splink's
    predictions with its gamma_/mw_ columns). A weight is log2 of the level's Bayes factor
    (m/u), so the prior plus the weights is the pair's match weight."""
    labels = labels if labels is not None else _levels_by_gamma(model)
    fields = []
    for name, mapping in labels.items():
        gamma = int(row[f"gamma_{name}"])
        fields.append(
            {
                "field": name,
                "level": mapping.get(gamma, str(gamma)),
                "weight": _weight(row[f"mw_{name}"]),
            }
        )
    return {"prior": prior_weight(model), "fields": fields}


def _pairs_frame(predictions: pd.DataFrame, model: dict, threshold: float) -> pd.DataFrame:
    kept = predictions[predictions["match_probability"] >= threshold]
    if kept.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    labels = _levels_by_gamma(model)
    frame = pd.DataFrame(
        {
            "record_l": kept["record_id_l"].astype(str).to_numpy(),
            "record_r": kept["record_id_r"].astype(str).to_numpy(),
            "match_probability": kept["match_probability"].astype(float).to_numpy(),
            "match_weight": kept["match_weight"]
            .astype(float)
            .clip(-WEIGHT_LIMIT, WEIGHT_LIMIT)
            .to_numpy(),
            "explanation": [explain(row, model, labels) for row in kept.to_dict("records")],
        }
    )
    return frame.sort_values(["record_l", "record_r"], ignore_index=True)


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

_spark_lock = threading.Lock()
_spark_functions_loaded: set[int] = set()

# Splink's Scala similarity functions, under the names DuckDB gives them.
_SPARK_FUNCTIONS = {
    "jaro_winkler_similarity": "uk.gov.moj.dash.linkage.JaroWinklerSimilarity",
    "jaro_similarity": "uk.gov.moj.dash.linkage.JaroSimilarity",
    "damerau_levenshtein": "uk.gov.moj.dash.linkage.LevDamerauDistance",
}


def _duckdb_api():
    from splink import DuckDBAPI

    return DuckDBAPI()


def _spark_api():
    from pyspark.sql.types import DoubleType
    from splink import SparkAPI
    from splink.backends.spark import similarity_jar_location

    from civicpulse.lake.engine import spark_session

    session = spark_session()
    with _spark_lock:
        if id(session) not in _spark_functions_loaded:
            # The jar is added to the running session rather than at start-up, so the one
            # process-wide session of lake.engine serves the linker too.
            session.sql(f"ADD JAR '{similarity_jar_location()}'")
            for name, java_class in _SPARK_FUNCTIONS.items():
                session.udf.registerJavaFunction(name, java_class, DoubleType())
            _spark_functions_loaded.add(id(session))
    return SparkAPI(
        spark_session=session, break_lineage_method="persist", register_udfs_automatically=False
    )


def _api(engine: str):
    if engine == "duckdb":
        return _duckdb_api()
    if engine == "spark":
        return _spark_api()
    raise ValueError(f"unknown linking engine {engine!r}: use one of {', '.join(ENGINES)}")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _spec(kind: str | Spec) -> Spec:
    if isinstance(kind, Spec):
        return kind
    try:
        return SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}: use one of {', '.join(SPECS)}") from None


def _check_frame(frame: pd.DataFrame, spec: Spec, what: str = "frame") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"the {what} must be a pandas DataFrame, not {type(frame).__name__}")
    if frame.empty:
        raise ValueError(f"the {what} of {spec.kind} records is empty: nothing to link")
    missing = [c for c in ("record_id", *spec.columns, *spec.retain) if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} of {spec.kind} records lacks columns: {', '.join(missing)}")
    if frame["record_id"].isna().any():
        raise ValueError(f"the {what} of {spec.kind} records has rows without a record_id")
    repeated = frame["record_id"].astype(str)
    repeated = repeated[repeated.duplicated()]
    if len(repeated):
        raise ValueError(
            f"the {what} of {spec.kind} records repeats record_id {repeated.iloc[0]!r}"
        )


def _check_model(model: dict, spec: Spec) -> None:
    if not isinstance(model, dict) or "comparisons" not in model:
        raise ValueError(f"the model is not a trained Splink settings dict for {spec.kind} records")
    names = [c.get("output_column_name") for c in model["comparisons"]]
    if names != spec.comparison_names():
        raise ValueError(
            f"the model compares {', '.join(map(str, names))}, not the {spec.kind} fields "
            f"{', '.join(spec.comparison_names())}: it was trained for another kind"
        )


def _check_thresholds(link_threshold: float, review_threshold: float) -> None:
    if not 0 < review_threshold <= link_threshold <= 1:
        raise ValueError(
            f"thresholds must satisfy 0 < review ({review_threshold}) <= link "
            f"({link_threshold}) <= 1"
        )


def _table(frame: pd.DataFrame, spec: Spec) -> pa.Table:
    """The columns a spec reads, every one a string (None = missing), so an all-empty column
    has a type on every engine."""
    columns = ["record_id", *spec.columns, *spec.retain]
    arrays = {}
    for column in columns:
        values = frame[column]
        try:  # the usual case, str or None: converted without a Python loop
            arrays[column] = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = values.astype(object).where(values.notna(), None)
            arrays[column] = pa.array(
                [None if v is None else str(v) for v in text], type=pa.string()
            )
    return pa.table(arrays)


# --------------------------------------------------------------------------------------------
# Linking
# --------------------------------------------------------------------------------------------


def _u_pairs(records: int) -> int:
    """How many random pairs u is estimated from, for ``records`` records: scaled with the
    input between a floor and a ceiling, and never more pairs than the records make."""
    scaled = min(max(U_PAIRS_PER_RECORD * records, U_MIN_PAIRS), U_MAX_PAIRS)
    return int(min(scaled, records * (records - 1) // 2))


def _train(linker, spec: Spec, records: int) -> None:
    """Train without labels, seeded, so the same records give the same model. The sampling
    for u costs in proportion to the pairs sampled (it was nine tenths of a small city's
    training at a fixed five million); EM is bounded by its pairs and iterations."""
    training = linker.training
    training.estimate_probability_two_random_records_match(spec.deterministic, recall=spec.recall)
    training.estimate_u_using_random_sampling(max_pairs=_u_pairs(records), seed=SEED)
    for rule in spec.training:
        training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS
        )


def _model_dict(linker) -> dict:
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)  # a per-run table prefix, not part of the model
    return model


def _count(linker, table) -> int:
    result = linker.misc.query_sql(f"select count(*) as n from {table.physical_name}", "pandas")
    return int(result.iloc[0, 0])


def train(frame: pd.DataFrame, kind: str | Spec, *, engine: str = "duckdb") -> dict:
    """The trained model alone, as :func:`run` trains it, for a caller that scores later with
    ``model=`` (the benchmark times the two apart)."""
    from splink import Linker

    spec = _spec(kind)
    _check_frame(frame, spec)
    table = _api(engine).register(_table(frame, spec))
    linker = Linker(table, spec.settings(), log_level=logging.ERROR)
    _train(linker, spec, len(frame))
    return _model_dict(linker)


def run(
    frame: pd.DataFrame,
    spec: Spec,
    *,
    model: dict | None = None,
    engine: str = "duckdb",
    link_threshold: float = DEFAULT_THRESHOLDS["link"],
    review_threshold: float = DEFAULT_THRESHOLDS["review"],
) -> LinkResult:
    """Dedupe ``frame`` (records from any number of sources) with ``spec``: train unless a
    ``model`` is given, score the blocked pairs, cluster at ``link_threshold``."""
    from splink import Linker

    _check_frame(frame, spec)
    _check_thresholds(link_threshold, review_threshold)
    if model is not None:
        _check_model(model, spec)
    started = time.perf_counter()
    api = _api(engine)
    table = api.register(_table(frame, spec))
    settings = dict(model) if model is not None else spec.settings()
    settings.pop("sql_dialect", None)
    linker = Linker(table, settings, log_level=logging.ERROR)
    if model is None:
        _train(linker, spec, len(frame))
    trained_at = time.perf_counter()
    trained = _model_dict(linker)

    blocked = linker.inference.compute_blocked_pairs_for_predict()
    comparisons = _count(linker, blocked)
    predictions = linker.inference.predict(
        threshold_match_probability=review_threshold, warning_mode="never"
    )
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=link_threshold
    )
    scored = predictions.as_pandas_dataframe()
    clusters = clustered.as_pandas_dataframe()[["record_id", "cluster_id"]].astype(str)
    clusters = clusters.sort_values("record_id", ignore_index=True)
    pairs = _pairs_frame(scored, trained, review_threshold)
    finished = time.perf_counter()
    counts = {
        "records": len(frame),
        "comparisons": comparisons,
        "pairs": len(pairs),
        "linked_pairs": int((pairs["match_probability"] >= link_threshold).sum()),
        "clusters": int(clusters["cluster_id"].nunique()),
        "engine": engine,
        "trained": model is None,
        "training_seconds": round(trained_at - started, 3),
        "seconds": round(finished - started, 3),
    }
    return LinkResult(pairs=pairs, clusters=clusters, model=trained, counts=counts)


def link(
    frame: pd.DataFrame,
    kind: str,
    *,
    model: dict | None = None,
    engine: str = "duckdb",
    link_threshold: float = DEFAULT_THRESHOLDS["link"],
    review_threshold: float = DEFAULT_THRESHOLDS["review"],
) -> LinkResult:
    """Link the normalised records of ``kind`` ("resident" or "enterprise") in ``frame``.

    ``frame`` holds ``record_id``, ``source`` and the normalised columns of the kind. With
    ``model`` (from an earlier run) nothing is trained, so the same records give the same pairs.
    """
    return run(
        frame,
        _spec(kind),
        model=model,
        engine=engine,
        link_threshold=link_threshold,
        review_threshold=review_threshold,
    )


def _candidates(new: pd.DataFrame, existing: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The existing records some blocking rule pairs with a new one.

    Each rule is an equi-join, run straight over the pandas frames by DuckDB, so only the few
    candidates (not a hundred thousand records) are handed to Splink; the pairs it then scores
    are exactly those a full blocking would give.
    """
    import duckdb

    columns = ["record_id", *spec.columns]
    con = duckdb.connect()
    try:
        con.register("new_records", new[columns].astype(object))
        con.register("existing_records", existing[columns])
        joins = " union ".join(
            f"select r.record_id from new_records as l join existing_records as r on ({rule})"
            for rule in spec.blocking
        )
        keys = con.execute(joins).fetchnumpy()["record_id"]
    finally:
        con.close()
    return existing[existing["record_id"].isin(set(keys))]


def match_new(
    new: pd.DataFrame,
    existing: pd.DataFrame,
    kind: str | Spec,
    model: dict,
    *,
    review_threshold: float = DEFAULT_THRESHOLDS["review"],
) -> pd.DataFrame:
    """Score ``new`` records against ``existing`` ones with a trained model, nothing trained
    and no pair within ``existing`` looked at: what an incremental link needs.

    Returns pairs (``record_l`` new, ``record_r`` existing) at or above ``review_threshold``.
    ``existing`` may hold the new records too, to compare a batch with itself: each pair then
    comes both ways, and a record is never paired with itself.
    """
    from splink import Linker

    spec = _spec(kind)
    _check_frame(new, spec, "new frame")
    _check_model(model, spec)
    if not 0 < review_threshold <= 1:
        raise ValueError(f"the review threshold must be in (0, 1], not {review_threshold}")
    if existing is None or len(existing) == 0:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    _check_frame(existing, spec, "existing frame")
    candidates = _candidates(new, existing, spec)
    if candidates.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    api = _duckdb_api()
    new_table = api.register(_table(new, spec))
    existing_table = api.register(_table(candidates, spec))
    settings = dict(model)
    settings.pop("sql_dialect", None)
    linker = Linker(existing_table, settings, log_level=logging.ERROR, validate_settings=False)
    predictions = linker.inference.predict_between(
        new_table,
        existing_table,
        threshold_match_probability=review_threshold,
        warning_mode="never",
    )
    scored = predictions.as_pandas_dataframe()
    scored = scored[scored["record_id_l"].astype(str) != scored["record_id_r"].astype(str)]
    return _pairs_frame(scored, model, review_threshold)
