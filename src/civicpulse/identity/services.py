"""What other apps, the CLI and the demo use of identity.

- the identifier checks (GB 11643 resident ID numbers, GB 32100 unified social credit codes,
  mainland mobiles), the heuristics that spot names and addresses, and masking
  (:mod:`~civicpulse.identity.checks`, plain Python);
- record sources and taking in their rows (:mod:`~civicpulse.identity.records`);
- the master index: full and incremental links, people's rulings, merges, splits and their
  undoing, explanations (:mod:`~civicpulse.identity.master`), survivorship rules;
- issuing "my space" accounts (:mod:`~civicpulse.identity.access`).

Other apps import these names from here, as the house rules ask of every domain app; the
modules behind them are the identity app's own business.
"""

from __future__ import annotations

from django.db.models import Count, QuerySet

from civicpulse.identity.access import AccountError, issue_account
from civicpulse.identity.checks import (
    PROVINCE_CODES,
    CheckResult,
    check_credit_code,
    check_mobile,
    check_resident_id,
    looks_like_address,
    looks_like_person_name,
    mask,
    name_key,
    normalise,
    to_halfwidth,
)
from civicpulse.identity.master import (
    MasterError,
    decide,
    explain,
    latest_model_run,
    link_new,
    merge,
    run_full,
    split,
    undo,
)
from civicpulse.identity.models import Kind, ReviewPair, Source
from civicpulse.identity.records import (
    IngestReport,
    RecordsError,
    ensure_builtin_sources,
    ensure_source,
    frame,
    ingest,
    pending,
    sync,
    sync_all,
)
from civicpulse.identity.survivorship import RULES as SURVIVORSHIP_RULES

__all__ = [
    "PROVINCE_CODES",
    "CheckResult",
    "check_credit_code",
    "check_mobile",
    "check_resident_id",
    "looks_like_address",
    "looks_like_person_name",
    "mask",
    "name_key",
    "normalise",
    "to_halfwidth",
    "AccountError",
    "IngestReport",
    "MasterError",
    "RecordsError",
    "SURVIVORSHIP_RULES",
    "decide",
    "ensure_builtin_sources",
    "ensure_source",
    "explain",
    "frame",
    "ingest",
    "issue_account",
    "latest_model_run",
    "link_new",
    "merge",
    "pending",
    "pending_reviews",
    "run_full",
    "sources",
    "split",
    "sync",
    "sync_all",
    "undo",
]


def sources() -> QuerySet[Source]:
    """Every record source with how many records it holds (``held``), by name."""
    return (
        Source.objects.select_related("department").annotate(held=Count("records")).order_by("name")
    )


def pending_reviews() -> dict[str, int]:
    """Pairs waiting for a person's decision, per kind (every kind listed, zero or not)."""
    waiting = dict(
        ReviewPair.objects.filter(status=ReviewPair.Status.PENDING)
        .values_list("kind")
        .annotate(n=Count("id"))
    )
    return {kind: waiting.get(kind, 0) for kind in Kind.values}
