"""How well the linker finds the same entity: precision, recall and F1 on labelled public data.

Two benchmark files under ``../shared/data/er`` carry the truth:

* ``dedupe_chicago_early_childhood_messy.csv`` - 3,337 rows from nine agencies' lists of early
  childhood sites in Chicago; ``..._true_ids.csv`` gives each row (``Id``) its site (``True Id``).
* ``splink_fake_1000.csv`` - 1,000 synthetic people with typos; ``splink_fake_1000_labels.csv``
  lists labelled pairs (``clerical_match_score`` 1 = same person).

Each gets a :class:`~civicpulse.identity.linking.Spec` of its own (English fields: names,
addresses, zip, phone / first name, surname, birth date, city, email) and runs through
:func:`civicpulse.identity.linking.run`, the very code that links residents, so the figures
measure the product. Scores are pairwise: a pair of records counts as found when both fall in
one predicted cluster, as true when both belong to one true entity.

:func:`write_report` rewrites its own section of ``docs/identity.md`` (between two markers) with
the figures and the thresholds that produced them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from civicpulse.identity import linking
from civicpulse.identity.linking import (
    comparison,
    damerau_level,
    equal,
    exact_level,
    jaro_winkler_level,
    level,
    null_level,
    present,
)

__all__ = [
    "DATASETS",
    "SWEEP",
    "clusters_from_pairs",
    "evaluate",
    "pair_counts",
    "scores",
    "write_report",
]

SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
BEGIN = "<!-- evaluation:begin (written by civicpulse.identity.evaluation.write_report) -->"
END = "<!-- evaluation:end -->"


def data_dir() -> Path:
    """``../shared/data/er`` beside the checkout (where the benchmark files are read in place)."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "data" / "er"


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _pairs_in(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def pair_counts(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """True, predicted and correctly predicted pairs, from two ``record_id -> cluster_id``
    frames over the same records, without listing the pairs (sizes of the clusters and of
    their intersections suffice)."""
    joined = predicted[["record_id", "cluster_id"]].merge(
        truth[["record_id", "cluster_id"]], on="record_id", suffixes=("_p", "_t"), how="inner"
    )
    if len(joined) != len(truth) or len(joined) != len(predicted):
        raise ValueError("predicted and true clusters must cover the same records")
    return {
        "true_pairs": _pairs_in(joined.groupby("cluster_id_t").size()),
        "predicted_pairs": _pairs_in(joined.groupby("cluster_id_p").size()),
        "correct_pairs": _pairs_in(joined.groupby(["cluster_id_p", "cluster_id_t"]).size()),
    }


def scores(counts: dict) -> dict:
    """Precision, recall and F1 from :func:`pair_counts` (an empty side scores 0)."""
    tp, p, t = counts["correct_pairs"], counts["predicted_pairs"], counts["true_pairs"]
    precision = tp / p if p else 0.0
    recall = tp / t if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def clusters_from_pairs(records: Iterable[str], pairs: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """Connected components: every record with the cluster (its smallest member) its pairs
    join it to. Used to re-cluster at each threshold of a sweep without re-running Splink."""
    parent = {r: r for r in records}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    ids = list(parent)
    return pd.DataFrame({"record_id": ids, "cluster_id": [root(r) for r in ids]})


# --------------------------------------------------------------------------------------------
# The benchmark data, in the shape the linker reads
# --------------------------------------------------------------------------------------------

_PUNCTUATION = re.compile(r"[^a-z0-9 ]+")
_SPACE = re.compile(r"\s+")
_STREET_WORDS = {
    "west": "w",
    "east": "e",
    "north": "n",
    "south": "s",
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "road": "rd",
    "drive": "dr",
    "place": "pl",
    "parkway": "pkwy",
}


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = _SPACE.sub(" ", _PUNCTUATION.sub(" ", str(value).lower())).strip()
    return text or None


def _street(value) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return " ".join(_STREET_WORDS.get(word, word) for word in text.split())


def _digits(value, length: int | None = None) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    text = text[:-2] if text.endswith(".0") else text
    digits = re.sub(r"\D", "", text)
    if length is not None:
        digits = digits[:length] if len(digits) >= length else ""
    return digits or None


def chicago_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nine agencies' rows as the linker reads them, and the true clusters."""
    folder = data_dir()
    messy = pd.read_csv(folder / "dedupe_chicago_early_childhood_messy.csv", dtype=str)
    truth = pd.read_csv(folder / "dedupe_chicago_early_childhood_true_ids.csv", dtype=str)
    address = messy["Address"].map(_street)
    frame = pd.DataFrame(
        {
            "record_id": messy["Id"].str.strip(),
            "source": messy["Source"],
            "name": messy["Site name"].map(_text),
            "address": address,
            "address_number": address.map(
                lambda a: a.split()[0] if a and a.split()[0].isdigit() else None
            ),
            "zip": messy["Zip"].map(lambda z: _digits(z, 5)),
            "phone": messy["Phone"].map(lambda p: _digits(p)),
        }
    )
    frame["phone"] = frame["phone"].where(frame["phone"].str.len() >= 7)
    clusters = pd.DataFrame(
        {"record_id": truth["Id"].str.strip(), "cluster_id": truth["True Id"].str.strip()}
    )
    return frame, clusters


def fake_1000_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The synthetic people as the linker reads them, and the clusters their labels imply."""
    folder = data_dir()
    people = pd.read_csv(folder / "splink_fake_1000.csv", dtype=str)
    labels = pd.read_csv(folder / "splink_fake_1000_labels.csv", dtype=str)
    email = people["email"].map(lambda e: e.strip().lower() if isinstance(e, str) else None)
    frame = pd.DataFrame(
        {
            "record_id": people["unique_id"],
            "first_name": people["first_name"].map(_text),
            "surname": people["surname"].map(_text),
            "dob": people["dob"],
            "city": people["city"].map(_text),
            "email": email,
            "email_user": email.map(lambda e: e.split("@")[0] if e else None),
        }
    )
    same = labels[labels["clerical_match_score"].astype(float) == 1.0]
    clusters = clusters_from_pairs(
        frame["record_id"], zip(same["unique_id_l"], same["unique_id_r"], strict=True)
    )
    return frame, clusters


CHICAGO = linking.Spec(
    kind="chicago_early_childhood",
    columns=("name", "address", "address_number", "zip", "phone"),
    comparisons=[
        comparison(
            "name",
            [
                null_level("name"),
                exact_level("name"),
                jaro_winkler_level("name", 0.92),
                jaro_winkler_level("name", 0.8),
                jaro_winkler_level("name", 0.6),
            ],
        ),
        comparison(
            "address",
            [
                null_level("address"),
                exact_level("address"),
                level(
                    f"{present('address_number')} and address_number_l = address_number_r "
                    "and jaro_winkler_similarity(address_l, address_r) >= 0.85",
                    "same number, similar street",
                ),
                level(
                    f"{present('address_number')} and address_number_l = address_number_r",
                    "same number",
                ),
                jaro_winkler_level("address", 0.85),
            ],
        ),
        comparison("phone", [null_level("phone"), exact_level("phone")]),
        comparison("zip", [null_level("zip"), exact_level("zip")]),
    ],
    blocking=[
        equal("phone"),
        equal("address"),
        equal("name"),
        equal("address_number", "zip"),
        "l.address_number = r.address_number and substr(l.name, 1, 3) = substr(r.name, 1, 3)",
    ],
    deterministic=[equal("name", "address"), equal("phone", "address_number")],
    recall=0.6,
    training=[equal("phone"), equal("address_number")],
    retain=("source",),
)

FAKE_1000 = linking.Spec(
    kind="splink_fake_1000",
    columns=("first_name", "surname", "dob", "city", "email", "email_user"),
    comparisons=[
        comparison(
            "first_name",
            [
                null_level("first_name"),
                exact_level("first_name"),
                jaro_winkler_level("first_name", 0.9),
                jaro_winkler_level("first_name", 0.7),
            ],
        ),
        comparison(
            "surname",
            [
                null_level("surname"),
                exact_level("surname"),
                jaro_winkler_level("surname", 0.9),
                jaro_winkler_level("surname", 0.7),
            ],
        ),
        comparison(
            "dob",
            [
                null_level("dob"),
                exact_level("dob"),
                damerau_level("dob", 1),
                level("substr(dob_l, 1, 4) = substr(dob_r, 1, 4)", "same year"),
            ],
        ),
        comparison("city", [null_level("city"), exact_level("city")]),
        comparison(
            "email",
            [
                null_level("email"),
                exact_level("email"),
                exact_level("email_user", "same user name"),
                jaro_winkler_level("email", 0.88),
            ],
        ),
    ],
    # a thousand records allow wide blocks: every shared name, birth date or e-mail user
    blocking=[
        equal("first_name", "surname"),
        equal("surname", "dob"),
        equal("first_name", "dob"),
        equal("email"),
        equal("dob", "city"),
        equal("surname"),
        equal("first_name"),
        equal("dob"),
        equal("email_user"),
    ],
    deterministic=[equal("first_name", "surname", "dob"), equal("email")],
    recall=0.7,
    training=[equal("first_name", "surname"), equal("dob")],
)


@dataclass(frozen=True)
class Dataset:
    title: str
    files: str
    spec: linking.Spec
    load: Callable[[], tuple[pd.DataFrame, pd.DataFrame]]  # the records and the true clusters


DATASETS = {
    "chicago_early_childhood": Dataset(
        "Chicago early childhood sites (9 agencies)",
        "dedupe_chicago_early_childhood_messy.csv + _true_ids.csv",
        CHICAGO,
        chicago_frame,
    ),
    "splink_fake_1000": Dataset(
        "Splink fake_1000 people",
        "splink_fake_1000.csv + splink_fake_1000_labels.csv",
        FAKE_1000,
        fake_1000_frame,
    ),
}


# --------------------------------------------------------------------------------------------
# Evaluation and the report
# --------------------------------------------------------------------------------------------


def _round(values: dict) -> dict:
    return {k: round(v, 4) for k, v in values.items()}


def evaluate(name: str, *, threshold: float | None = None) -> dict:
    """Link one benchmark dataset, unsupervised, and score its clusters against the truth.

    ``threshold`` is the link threshold (default: the product's,
    ``linking.DEFAULT_THRESHOLDS["link"]``); the sweep re-clusters the same scored pairs at
    each threshold of :data:`SWEEP`.
    """
    try:
        dataset = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}") from None
    link_threshold = linking.DEFAULT_THRESHOLDS["link"] if threshold is None else threshold
    if not 0 < link_threshold <= 1:
        raise ValueError(f"the threshold must be in (0, 1], not {link_threshold}")
    frame, truth = dataset.load()
    lowest = min(*SWEEP, link_threshold)
    result = linking.run(
        frame, dataset.spec, link_threshold=link_threshold, review_threshold=lowest
    )
    counts = pair_counts(result.clusters, truth)
    sweep = []
    for t in sorted({*SWEEP, link_threshold}):
        kept = result.pairs[result.pairs["match_probability"] >= t]
        clusters = clusters_from_pairs(
            frame["record_id"], zip(kept["record_l"], kept["record_r"], strict=True)
        )
        sweep.append({"threshold": t, **_round(scores(pair_counts(clusters, truth)))})
    return {
        "dataset": name,
        "title": dataset.title,
        "files": dataset.files,
        "records": len(frame),
        "entities": int(truth["cluster_id"].nunique()),
        "threshold": link_threshold,
        **counts,
        **_round(scores(counts)),
        "comparisons": result.counts["comparisons"],
        "clusters": result.counts["clusters"],
        "seconds": result.counts["seconds"],
        "prior": result.model["probability_two_random_records_match"],
        "blocking": dataset.spec.blocking,
        "sweep": sweep,
    }


def _section(results: list[dict]) -> str:
    lines = [
        BEGIN,
        "",
        "| dataset | records | true entities | link threshold | precision | recall | F1 "
        "| pairs scored | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['title']} | {r['records']:,} | {r['entities']:,} | {r['threshold']} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
            f"| {r['comparisons']:,} | {r['seconds']:.1f} |"
        )
    for r in results:
        lines += [
            "",
            f"**{r['title']}** ({r['files']}): {r['true_pairs']:,} true pairs, "
            f"{r['predicted_pairs']:,} predicted, {r['correct_pairs']:,} correct; "
            f"trained prior {r['prior']:.5f}. Blocking: "
            + "; ".join(f"`{rule}`" for rule in r["blocking"])
            + ".",
            "",
            "| threshold | precision | recall | F1 |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for s in r["sweep"]:
            lines.append(
                f"| {s['threshold']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |"
            )
    lines += ["", END]
    return "\n".join(lines)


def write_report(
    path: str | Path = "docs/identity.md", *, results: list[dict] | None = None
) -> str:
    """Evaluate every dataset (unless ``results`` are given) and rewrite the evaluation
    section of ``path`` between its markers, leaving the rest of the document as it is. A
    document without the markers gets the section appended."""
    results = results if results is not None else [evaluate(name) for name in DATASETS]
    section = _section(results)
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text, encoding="utf-8")
    return section
