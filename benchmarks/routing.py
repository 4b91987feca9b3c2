"""Routing: accuracy on real labelled data beside the majority baseline, and throughput.

    .venv/bin/python -m benchmarks.routing [--no-write]

Reads ``../shared/data`` in place (never copies it), builds the demo city's requests in
memory, and writes docs/routing.md and the "Routing" section of docs/benchmarks.md.
Throughput is measured on one core (the process is pinned to one CPU while it is measured).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.report import machine, one_core, rate, table, write_section

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEMO_SEED, DEMO_END = 2260, date(2026, 11, 26)

# NYC 311 extracts with the same columns and several agencies each (the mixed_data237 file
# holds one agency only, DOHMH, so it cannot score agency routing; see ``nyc_311_single``).
NYC_FILES = (
    "nyc_311_2011_tuplex_subset.csv",
    "nyc_311_2019-12-31_atlas.csv",
    "nyc_311_qsv_100.csv",
    "nyc_311_animals_2025q1_plotly.csv",
)


@dataclass
class Score:
    data: str
    setting: str
    rows: int
    classes: int
    split: str
    accuracy: float
    spread: float | None
    baseline: float
    routed: float  # share of held-out texts at or above the threshold
    routed_accuracy: float  # accuracy on those


# ------------------------------------------------------------------------------ data


def _rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _key(name: str) -> str:
    """NYC files spell columns 'Complaint Type' or 'complaint_type'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def tipdm() -> tuple[list[str], list[str]] | str:
    """TipDM 2020 labelled messages (留言主题 + 留言详情 → 一级分类), or why they cannot be used."""
    path = SHARED / "zh" / "tipdm2020_gov_messages_labeled_part_a.csv"
    if not path.exists():
        return f"{path.relative_to(SHARED.parent.parent)} is missing"
    rows = _rows(path)
    if not rows or "一级分类" not in rows[0]:
        columns = ", ".join(rows[0]) if rows else "none"
        return (
            f"the file has {len(rows)} messages but no 一级分类 column (columns: {columns}), "
            "so it cannot score a classifier"
        )
    return [f"{r['留言主题']}\n{r['留言详情']}" for r in rows], [r["一级分类"] for r in rows]


def thucnews() -> tuple[list[str], list[str]]:
    rows = _rows(SHARED / "zh" / "thucnews_headlines_dev.csv")
    return [r["title"] for r in rows], [r["label"] for r in rows]


def nyc_311() -> list[dict[str, str]]:
    """The NYC 311 requests of ``NYC_FILES``, once each (by unique key), columns snake_case."""
    seen, out = set(), []
    for name in NYC_FILES:
        for row in _rows(SHARED / "311" / name):
            row = {_key(k): (v or "").strip() for k, v in row.items()}
            if row["unique_key"] in seen or not row["agency"]:
                continue
            seen.add(row["unique_key"])
            out.append(row)
    return out


def nyc_311_single() -> Counter:
    return Counter(r["Agency"] for r in _rows(SHARED / "311" / "nyc_311_mixed_data237.csv"))


def demo_requests(size: str = "small") -> tuple[list[str], list[str], list[str]]:
    """The demo city's requests: title + description, description alone, service code."""
    from civicpulse.demo.generator import DemoCity

    both, alone, labels = [], [], []
    for batch in DemoCity(seed=DEMO_SEED, size=size, end=DEMO_END).cases():
        for c in batch:
            both.append(f"{c.title}\n{c.description}")
            alone.append(c.description)
            labels.append(c.service_code)
    return both, alone, labels


# ------------------------------------------------------------------------------ scoring


def _fold_score(make, texts, labels, train, test, threshold):
    clf = make().fit([texts[i] for i in train], labels[train])
    probs = clf.probabilities([texts[i] for i in test])
    classes = np.asarray(clf.classes, dtype=object)
    best = clf.rank(probs, 1)[:, 0] if hasattr(clf, "rank") else probs.argmax(axis=1)
    predicted = classes[best]
    right = predicted == labels[test]
    sure = probs.max(axis=1) >= threshold
    values, counts = np.unique(labels[train], return_counts=True)
    baseline = np.mean(labels[test] == values[counts.argmax()])
    return right.mean(), baseline, sure.mean(), (right[sure].mean() if sure.any() else 0.0)


def score(
    data: str,
    setting: str,
    texts: list[str],
    labels: list[str],
    *,
    folds: int = 0,
    groups: list[str] | None = None,
    make: Callable | None = None,
    threshold: float = 0.5,
) -> Score:
    """Top-1 accuracy and the majority baseline: a stratified 20 % hold-out (``folds=0``),
    stratified k-fold CV, or, with ``groups``, k folds that never share a group."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split

    from civicpulse.text.classify import TextClassifier

    make = make or TextClassifier
    labels_a = np.asarray(labels, dtype=object)
    counts = Counter(labels)
    keep = np.array([counts[x] >= max(2, folds) for x in labels])  # stratifiable classes
    texts = [t for t, k in zip(texts, keep, strict=True) if k]
    labels_a = labels_a[keep]
    idx = np.arange(len(texts))
    if groups is not None:
        groups_a = np.asarray(groups, dtype=object)[keep]
        splits = list(GroupKFold(folds).split(idx, groups=groups_a))
        split = f"{folds}-fold, grouped (no {setting.split(',')[0]} group in both)"
    elif folds:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(idx, labels_a))
        split = f"{folds}-fold stratified CV"
    else:
        splits = [train_test_split(idx, test_size=0.2, stratify=labels_a, random_state=0)]
        split = "20 % stratified hold-out"
    results = np.array([_fold_score(make, texts, labels_a, a, b, threshold) for a, b in splits])
    return Score(
        data=data,
        setting=setting,
        rows=len(texts),
        classes=len(set(labels_a)),
        split=split,
        accuracy=float(results[:, 0].mean()),
        spread=float(results[:, 0].std()) if len(splits) > 1 else None,
        baseline=float(results[:, 1].mean()),
        routed=float(results[:, 2].mean()),
        routed_accuracy=float(results[:, 3].mean()),
    )


def evaluate(
    progress: Callable[[str], None] = print,
) -> tuple[list[Score], list[str], list[tuple[str, float, float]]]:
    """Every score of docs/routing.md, notes on data that could not be scored, and the
    comparison of models behind the choice."""
    from civicpulse.text.classify import TextClassifier

    scores, notes = [], []
    got = tipdm()
    if isinstance(got, str):
        notes.append(f"TipDM 2020 labelled messages not scored: {got}.")
    else:
        progress("TipDM")
        scores.append(score("TipDM 2020 gov messages", "主题 + 详情 → 一级分类", *got, folds=5))

    progress("THUCNews")
    texts, labels = thucnews()
    scores.append(score("THUCNews headlines (zh)", "title → topic", texts, labels, folds=5))

    progress("NYC 311")
    nyc = nyc_311()
    agency = [r["agency"] for r in nyc]
    form = [f"{r['complaint_type']} {r['descriptor']}" for r in nyc]
    with_resolution = [f"{r['descriptor']} {r.get('resolution_description', '')}" for r in nyc]
    kinds = [r["complaint_type"] for r in nyc]
    scores += [
        score("NYC 311 (4 files)", "complaint type + descriptor → agency", form, agency),
        score(
            "NYC 311 (4 files)", "descriptor + resolution text → agency", with_resolution, agency
        ),
        score(
            "NYC 311 (4 files)",
            "complaint type, unseen: type + descriptor → agency",
            form,
            agency,
            folds=5,
            groups=kinds,
        ),
    ]
    single = nyc_311_single()
    notes.append(
        "nyc_311_mixed_data237.csv not scored for agency: its "
        f"{sum(single.values()):,} requests all go to {', '.join(single)} (a majority baseline "
        "of 1.0); the multi-agency NYC files above are used instead."
    )

    progress("demo city")
    both, alone, services = demo_requests()
    scores += [
        score("demo city (seed 2260, small)", "title + description → service", both, services),
        score("demo city (seed 2260, small)", "description → service", alone, services),
    ]

    progress("model choice")
    choice = []
    for name, make in (
        ("logistic regression, jieba without HMM (chosen)", TextClassifier),
        ("logistic regression, jieba with HMM", lambda: TextClassifier(hmm=True)),
        ("logistic regression, no character bigrams", lambda: TextClassifier(char_bigrams=False)),
        ("logistic regression, no word bigrams", lambda: TextClassifier(word_bigrams=False)),
        ("linear SVM (no probabilities)", _LinearSvm),
    ):
        zh = score("THUCNews headlines (zh)", name, texts, labels, folds=5, make=make)
        en = score("NYC 311, unseen types", name, form, agency, folds=5, groups=kinds, make=make)
        choice.append((name, zh.accuracy, en.accuracy))
    return scores, notes, choice


class _LinearSvm:
    """The same features under a linear SVM, for comparison: softmax of its margins stands in
    for a probability (uncalibrated)."""

    def __init__(self):
        from civicpulse.text.classify import TextClassifier

        self.features = TextClassifier()

    def fit(self, texts, labels):
        from sklearn.svm import LinearSVC

        self.features.fit(texts, labels)  # vocabulary and idf (the regression is discarded)
        x = self.features.vectorizer.transform(self.features.analyse_all(texts))
        self.svm = LinearSVC(C=1.0).fit(x, labels)
        return self

    @property
    def classes(self):
        return [str(c) for c in self.svm.classes_]

    def probabilities(self, texts):
        x = self.features.vectorizer.transform(self.features.analyse_all(texts))
        margins = self.svm.decision_function(x)
        if margins.ndim == 1:
            margins = np.column_stack([-margins, margins])
        e = np.exp(margins - margins.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------ speed






def bench_routing() -> list[tuple[str, str, str, str]]:
    """Texts routed per second on one core, beside the tokenizer alone on the same texts."""
    from civicpulse.text.classify import TextClassifier
    from civicpulse.text.tokenize import tokens

    one_core()
    both, alone, services = demo_requests()
    train_texts, train_labels = both[:15_000], services[:15_000]
    requests = alone[15_000:]  # what a new request brings: its description
    tokens("暖气")  # jieba's dictionary loads outside the timing
    started = time.perf_counter()
    clf = TextClassifier().fit(train_texts, train_labels)
    train_s = time.perf_counter() - started
    try:
        from civicpulse.cases.routing import Router

        router = Router(clf, {code: "" for code in clf.classes})
        one, many = router, router.route_many
    except Exception:  # Django not set up: the classifier is the router's whole cost
        one, many = (lambda t: clf.predict([t])[0]), clf.predict

    def tokenize_all(texts):  # the router's own tokenizer settings
        return lambda: [tokens(t, hmm=clf.hmm) for t in texts]

    headlines, _ = thucnews()
    headlines = headlines[:5_000]
    rows = []
    for what, texts in (
        (f"demo requests (zh, {np.mean([len(t) for t in requests]):.0f} chars)", requests),
        (f"THUCNews headlines (zh, {np.mean([len(t) for t in headlines]):.0f} chars)", headlines),
    ):
        base = rate(tokenize_all(texts), len(texts))
        batch = rate(lambda texts=texts: many(texts), len(texts))
        rows.append(
            (
                f"routing, batches, {what}, 1 core",
                f"{batch:,.0f} texts/s",
                f"jieba tokens alone {base:,.0f} texts/s",
                f"{batch / base:.2f}x",
            )
        )
    sample = requests[:2_000]
    base = rate(tokenize_all(sample), len(sample))
    single = rate(lambda: [one(t) for t in sample], len(sample))
    rows.append(
        (
            "routing one request per call (as intake does), 1 core",
            f"{single:,.0f} texts/s",
            f"jieba tokens alone {base:,.0f} texts/s",
            f"{single / base:.2f}x",
        )
    )
    tokenize_s = len(train_texts) / rate(tokenize_all(train_texts), len(train_texts), 1)
    rows.append(
        (
            f"training on {len(train_texts):,} demo requests (analyse + fit)",
            f"{train_s:.1f} s",
            f"jieba tokens alone {tokenize_s:.1f} s",
            f"{train_s / tokenize_s:.1f}x",
        )
    )
    return rows


# ------------------------------------------------------------------------------ docs


def _fmt(s: Score) -> str:
    spread = f" ± {s.spread:.3f}" if s.spread is not None else ""
    return (
        f"| {s.data} | {s.setting} | {s.rows:,} | {s.classes} | {s.split} | "
        f"**{s.accuracy:.3f}**{spread} | {s.baseline:.3f} | {s.routed:.0%} at "
        f"{s.routed_accuracy:.3f} |"
    )


def write_docs(scores, notes, choice, speed, where: str) -> str:
    from civicpulse.cases.routing import CORRECTION_WEIGHT, MAX_TRAINING_ROWS, THRESHOLD
    from civicpulse.text.classify import TextClassifier

    clf = TextClassifier()
    today = date.today().isoformat()
    lines = [
        "# Routing citizen requests",
        "",
        f"Measured {today} on {where} by `python -m benchmarks.routing`.",
        "",
        "The router suggests a service (and so a department) for a request's text with a "
        f"confidence; below {THRESHOLD} the case waits in the triage queue. Operators' "
        f"corrections are kept (`RoutingCorrection`), win over the case's old label and count "
        f"x{CORRECTION_WEIGHT:g} when `civicpulse train router` (or the daily job "
        f"`cases.train_router`) retrains on the latest {MAX_TRAINING_ROWS:,} cases.",
        "",
        "## Model",
        "",
        "- Text normalised (NFKC: full-width to ASCII; lower case; URLs and numbers become "
        "`<url>` and `<num>`), language guessed from the share of CJK characters.",
        f"- Features: words (jieba precise mode, HMM {'on' if clf.hmm else 'off'}, for Chinese; "
        f"letters-only words without stop words for English), word bigrams "
        f"({'on' if clf.word_bigrams else 'off'}), Chinese character bigrams "
        f"({'on' if clf.char_bigrams else 'off'}); TF-IDF with sublinear tf, min_df "
        f"{clf.min_df}.",
        f"- Classifier: multinomial logistic regression (lbfgs, C={clf.c:g}); the confidence is "
        "the probability of the best class, 0 for a text with no known feature.",
        "- Scores below: top-1 accuracy on held-out data; the baseline always answers the "
        "training part's most frequent class. 'Routed' is the share of held-out texts at or "
        f"above the threshold {THRESHOLD} (not sent to triage) and the accuracy on those.",
        "",
        "## Accuracy on held-out data",
        "",
        "| data | setting | rows | classes | split | top-1 accuracy | majority baseline | "
        "routed (accuracy) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[_fmt(s) for s in scores],
        "",
        "Notes:",
        "",
        *[f"- {n}" for n in notes],
        "- NYC 311 has no free text written by the caller. *Complaint type + descriptor* are "
        "what the caller picked on the form and all but name the agency (the easy setting). "
        "*Descriptor + resolution text* adds the agency's own answer, written after the fact "
        "and often naming the agency: it is not available at routing time, so it flatters. "
        "*Unseen complaint type* is the honest hard setting: folds never share a complaint "
        "type, so the router must place a kind of request it has never seen by its words.",
        "- The demo city's requests come from templates, so they are easy by construction: "
        "they show the pipeline works end to end, not how a real city's text will score.",
        "- Real Chinese government messages with labels: the TipDM file in ../shared/data lacks "
        "its label column (see above), so THUCNews headlines (real, labelled, 10 topics) "
        "stand in for Chinese; they are news, not requests.",
        "",
        "## Choosing the model (5-fold mean top-1 accuracy)",
        "",
        "| model | THUCNews headlines | NYC 311, unseen complaint types |",
        "| --- | --- | --- |",
        *[f"| {name} | {zh:.3f} | {en:.3f} |" for name, zh, en in choice],
        "",
        "Logistic regression is kept for its probabilities (the triage threshold needs a "
        "confidence); jieba's HMM is off because it is slower and scored no better.",
        "",
        "## Throughput",
        "",
        *table(speed),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    import shutil
    import tempfile

    # Django only for the router's class: nothing is stored, the data dir is thrown away.
    data_dir = tempfile.mkdtemp(prefix="civicpulse-bench-routing-")
    os.environ["CIVICPULSE_DATA_DIR"] = data_dir
    os.environ.pop("CIVICPULSE_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    import django

    try:
        django.setup()
        report(args.no_write)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def report(print_only: bool = False) -> None:
    """Score, measure, and write docs/routing.md and the Routing section of the results."""
    where = machine()
    scores, notes, choice = evaluate(progress=lambda what: print(f"scoring {what} ...", flush=True))
    speed = bench_routing()
    doc = write_docs(scores, notes, choice, speed, where)
    print(doc)
    if not print_only:
        (REPO / "docs" / "routing.md").write_text(doc)
        write_section(
            "Routing",
            [
                f"Measured {date.today().isoformat()} on {where} by `python -m "
                "benchmarks.routing` (one core; the baseline is jieba tokenizing the same texts "
                "in the same run). Accuracy beside the majority baseline: docs/routing.md.",
                "",
                *table(speed),
            ],
        )
        print("wrote docs/routing.md and the Routing section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
