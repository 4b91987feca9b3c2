"""Routing: which service (and so which department) a request is for, with a confidence.

The router is a :class:`civicpulse.text.classify.TextClassifier` trained on the store's cases
(title and description → service code). Below :data:`THRESHOLD` a new case goes to the triage
queue; an operator's correction there is kept as a ``RoutingCorrection``, weighs more in the
next training and wins over the case's old label. ``civicpulse train router`` and the daily job
``cases.train_router`` retrain it; a web process picks the new file up by its modification time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from civicpulse.cases import workflow
from civicpulse.cases.models import Case, CaseEvent, RoutingCorrection, Service
from civicpulse.core import audit
from civicpulse.core.models import Area, Department
from civicpulse.text import tokenize
from civicpulse.text.classify import ModelFileError, TextClassifier

log = logging.getLogger("civicpulse.routing")

THRESHOLD = 0.5  # below this confidence a new case waits in the triage queue
MAX_TRAINING_ROWS = 200_000  # the latest cases; keeps training within a minute
CORRECTION_WEIGHT = 5.0  # an operator's correction counts as this many ordinary cases
HOLDOUT = 0.2  # share of cases held out (stratified) to report accuracy
MIN_CASES = 20
MODEL_FILE = "router.joblib"
TRANSFER_REASON = "routing corrected by operator"
# Grid names ("第1网格") say nothing and repeat in every community; the rest are kept whole.
_AREA_LEVELS_TO_REGISTER = ("city", "district", "street", "community")


def model_path() -> Path:
    return settings.CONFIG.data_dir / "models" / MODEL_FILE


def case_text(title: str, description: str) -> str:
    """What the router reads of a case: the title, then the description (the title only once
    when intake made it from the description's first line)."""
    title, description = (title or "").strip(), (description or "").strip()
    if not title or description.startswith(title):
        return description
    return f"{title}\n{description}"


def city_words() -> list[str]:
    """The city's own names (areas down to communities, departments) for jieba to keep whole."""
    names = set(
        Area.objects.filter(level__in=_AREA_LEVELS_TO_REGISTER).values_list("name_zh", flat=True)
    )
    names |= set(Department.objects.values_list("name_zh", flat=True))
    return sorted(n for n in names if n and len(n) > 1)


def _departments() -> dict[str, str]:
    """Active service code → its department's code."""
    return dict(Service.objects.filter(is_active=True).values_list("code", "department__code"))


class Router:
    """Suggests a service for a request's text; ``threshold`` is where triage begins.

    ``router(text) -> (service_code, confidence)`` is what ``workflow.take_in`` calls.
    Only active services of the store are suggested.
    """

    def __init__(
        self,
        classifier: TextClassifier,
        departments: dict[str, str] | None = None,
        *,
        threshold: float = THRESHOLD,
    ):
        self.classifier = classifier
        self.threshold = threshold
        self.departments = _departments() if departments is None else dict(departments)
        classes = classifier.classes
        usable = [i for i, code in enumerate(classes) if code in self.departments]
        # a model that knows none of today's services still answers (with its own codes)
        self._columns = np.asarray(usable or range(len(classes)), dtype=np.int64)
        self._codes = [classes[i] for i in self._columns]

    @property
    def meta(self) -> dict:
        return self.classifier.meta

    def _ranked(self, texts: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        probs = self.classifier.probabilities(texts)[:, self._columns]
        order = self.classifier.rank(probs, k, self._columns)
        return [
            [(self._codes[j], float(row[j])) for j in top]
            for row, top in zip(probs, order, strict=True)
        ]

    def __call__(self, text: str) -> tuple[str, float]:
        return self._ranked([text], 1)[0][0]

    def route_many(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The best service of each text, batched (about 1.5x the speed of one by one)."""
        return [ranked[0] for ranked in self._ranked(texts, 1)]

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, str, float]]:
        """The ``k`` likeliest services, best first: (service code, department code,
        confidence)."""
        return [
            (code, self.departments.get(code, ""), confidence)
            for code, confidence in self._ranked([text], k)[0]
        ]


_lock = threading.Lock()
_loaded: tuple[tuple, Router] | None = None  # ((path, mtime_ns, size), router)


def current_router() -> Router | None:
    """The trained router, loaded once per process and again when its file changes; None
    until ``civicpulse train router`` has run (or when the file cannot be used)."""
    global _loaded
    path = model_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    loaded = _loaded
    if loaded is not None and loaded[0] == key:
        return loaded[1]
    with _lock:
        if _loaded is not None and _loaded[0] == key:
            return _loaded[1]
        try:
            classifier = TextClassifier.load(path)
        except ModelFileError as exc:
            log.warning("router not loaded: %s", exc)
            return None
        tokenize.add_words(classifier.meta.get("words", []))
        router = Router(classifier)
        _loaded = (key, router)
        return router


# ------------------------------------------------------------------------------- training


def store_fingerprint() -> dict:
    """What training reads from the store, summed up: equal fingerprints give equal models."""
    cases = Case.objects.aggregate(n=Count("id"), last=Max("id"))
    triage = Case.objects.filter(needs_triage=True).aggregate(n=Count("id"), last=Max("id"))
    fixes = RoutingCorrection.objects.aggregate(n=Count("id"), last=Max("id"))
    return {
        "cases": [cases["n"], cases["last"]],
        "triage": [triage["n"], triage["last"]],
        "corrections": [fixes["n"], fixes["last"]],
        "services": [list(item) for item in sorted(_departments().items())],
    }


def _training_rows() -> tuple[list[str], list[str], list[bool]]:
    """Texts, labels and whether the label is an operator's correction: the latest cases not
    waiting in triage, plus every corrected case, labelled with its latest correction."""
    corrected: dict[int, str] = {}
    for case_id, code in RoutingCorrection.objects.order_by("at", "id").values_list(
        "case_id", "corrected"
    ):
        corrected[case_id] = code
    fields = ("id", "title", "description", "service__code")
    rows = list(
        Case.objects.filter(needs_triage=False)
        .order_by("-created_at", "-id")
        .values_list(*fields)[:MAX_TRAINING_ROWS]
    )
    seen = {row[0] for row in rows}
    missing = [case_id for case_id in corrected if case_id not in seen]
    for start in range(0, len(missing), 500):
        rows += Case.objects.filter(id__in=missing[start : start + 500]).values_list(*fields)
    active = _departments()
    texts, labels, fixed = [], [], []
    for case_id, title, description, code in rows:
        label = corrected.get(case_id, code)
        if label not in active:
            continue  # a retired service: the router should not learn to send cases there
        texts.append(case_text(title, description))
        labels.append(label)
        fixed.append(case_id in corrected)
    return texts, labels, fixed


def _holdout(labels: list[str], fixed: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Indices to train on and to test on: a stratified share of the uncorrected cases is held
    out (services with fewer than two such cases, and all corrections, stay in training)."""
    from sklearn.model_selection import train_test_split

    labels_a = np.asarray(labels, dtype=object)
    fixed_a = np.asarray(fixed, dtype=bool)
    counts = Counter(labels_a[~fixed_a])
    candidates = np.flatnonzero(~fixed_a & np.array([counts[x] >= 2 for x in labels_a]))
    always = np.setdiff1d(np.arange(len(labels)), candidates)
    n_test = int(round(len(candidates) * HOLDOUT))
    classes = len(set(labels_a[candidates]))
    if classes < 2 or n_test < classes or len(candidates) - n_test < classes:
        return np.arange(len(labels)), np.array([], dtype=np.int64)
    train, test = train_test_split(
        candidates, test_size=n_test, stratify=labels_a[candidates], random_state=0
    )
    return np.sort(np.concatenate([train, always])), np.sort(test)


def train_from_store(*, save: bool = True) -> str:
    """Train the router on the store, report held-out accuracy beside the majority baseline,
    save it atomically, and return the report (one paragraph)."""
    started = time.monotonic()
    fingerprint = store_fingerprint()
    words = city_words()
    tokenize.add_words(words)
    texts, labels, fixed = _training_rows()
    services = Counter(labels)
    if len(texts) < MIN_CASES or len(services) < 2:
        return (
            f"Router not trained: the store has {len(texts)} usable cases over "
            f"{len(services)} active services; at least {MIN_CASES} cases over 2 services "
            "are needed."
        )
    weights = np.where(np.asarray(fixed), CORRECTION_WEIGHT, 1.0)
    classifier = TextClassifier()
    docs = classifier.analyse_all(texts)
    train, test = _holdout(labels, fixed)
    labels_a = np.asarray(labels, dtype=object)
    held_out = ""
    accuracy = baseline = None
    if len(test):
        classifier.fit_analysed([docs[i] for i in train], labels_a[train], weights[train])
        probs = classifier.probabilities_analysed([docs[i] for i in test])
        classes = np.asarray(classifier.classes, dtype=object)
        predicted = classes[classifier.rank(probs, 1)[:, 0]]
        confidence = probs.max(axis=1)
        truth = labels_a[test]
        majority = Counter(labels_a[train]).most_common(1)[0][0]
        accuracy = float(np.mean(predicted == truth))
        baseline = float(np.mean(truth == majority))
        sure = confidence >= THRESHOLD
        sure_accuracy = float(np.mean(predicted[sure] == truth[sure])) if sure.any() else 0.0
        held_out = (
            f" Held-out top-1 accuracy {accuracy:.3f} on {len(test):,} cases "
            f"({HOLDOUT:.0%} stratified) against a majority baseline of {baseline:.3f} "
            f"(always {majority}); at the triage threshold {THRESHOLD} "
            f"{1 - sure.mean():.1%} of them would wait for an operator and the rest are "
            f"routed with accuracy {sure_accuracy:.3f}."
        )
    else:
        held_out = " Too few cases per service to hold any out: accuracy not measured."
    classifier.fit_analysed(docs, labels_a, weights)
    classifier.meta.update(
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        cases=len(texts),
        corrections=int(sum(fixed)),
        services=len(services),
        accuracy=accuracy,
        baseline=baseline,
        threshold=THRESHOLD,
        fingerprint=fingerprint,
        words=words,
    )
    where = ""
    if save:
        path = classifier.save(model_path())
        where = f" Saved to {path}."
    return (
        f"Router trained on {len(texts):,} cases ({int(sum(fixed)):,} corrected by operators, "
        f"weighted x{CORRECTION_WEIGHT:g}) over {len(services)} services in "
        f"{time.monotonic() - started:.1f} s.{held_out}{where}"
    )


def needs_training() -> bool:
    """True when the store changed since the saved router was trained (or there is none)."""
    router = current_router()
    if router is None:
        return True
    return router.meta.get("fingerprint") != store_fingerprint()


# ------------------------------------------------------------------------------- corrections


@transaction.atomic
def correct(case: Case, service: Service | str, actor) -> None:
    """An operator sets a case's right service: keep the correction (training data), move the
    case to that service and, while it is open, to that service's department; take it out of
    the triage queue. A closed case keeps the department that handled it."""
    if isinstance(service, str):
        try:
            service = Service.objects.select_related("department").get(code=service)
        except Service.DoesNotExist:
            raise workflow.CaseError(f"unknown service {service!r}", field="service") from None
    case = Case.objects.select_for_update().select_related("service").get(pk=case.pk)
    suggested = case.service.code
    name = audit.actor_name(actor)
    now = timezone.now()
    RoutingCorrection.objects.create(
        case=case, suggested=suggested, corrected=service.code, actor=name, at=now
    )
    case.service, case.needs_triage = service, False
    case.save(update_fields=["service", "needs_triage"])
    if suggested != service.code:
        CaseEvent.objects.create(
            case=case,
            at=now,
            actor=name,
            action="rerouted",
            from_status=case.status,
            to_status=case.status,
            note=f"service {suggested} → {service.code}",
        )
    moved = service.department_id != case.department_id and case.is_open
    if moved:
        workflow.transfer(case, service.department, actor, reason=TRANSFER_REASON)
    audit.record(
        name,
        "case.routing_corrected",
        case,
        detail={
            "suggested": suggested,
            "corrected": service.code,
            "department": service.department.code if moved else None,
        },
    )
