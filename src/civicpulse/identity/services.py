"""What other apps use of identity: the identifier checks (GB 11643 resident ID numbers,
GB 32100 unified social credit codes, mainland mobile numbers), the heuristics that spot names
and addresses, and masking. The checks live in :mod:`civicpulse.identity.checks` (plain Python);
other apps import them from here, as the house rules ask of every domain app."""

from __future__ import annotations

from civicpulse.identity.checks import (
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

__all__ = [
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
]

# --- records ---
# Records in from the departments' sources (civicpulse.identity.records).
from civicpulse.identity.master import MasterError, link_new, run_full  # noqa: E402
from civicpulse.identity.records import (  # noqa: E402
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

__all__ += [
    "MasterError",
    "link_new",
    "run_full",
    "IngestReport",
    "RecordsError",
    "ensure_builtin_sources",
    "ensure_source",
    "frame",
    "ingest",
    "pending",
    "pending_reviews",
    "sources",
    "sync",
    "sync_all",
]


def sources():
    """Every record source with how many records it holds, by name."""
    from django.db.models import Count

    from civicpulse.identity.models import Source

    return (
        Source.objects.select_related("department").annotate(held=Count("records")).order_by("name")
    )


def pending_reviews() -> dict[str, int]:
    """Pairs waiting for a person's decision, per kind (every kind listed, zero or not)."""
    from django.db.models import Count

    from civicpulse.identity.models import Kind, ReviewPair

    waiting = dict(
        ReviewPair.objects.filter(status=ReviewPair.Status.PENDING)
        .values_list("kind")
        .annotate(n=Count("id"))
    )
    return {kind: waiting.get(kind, 0) for kind in Kind.values}


# --- end records ---

# --- master index ---
# Stable master IDs, survivorship, people's rulings, merges, splits and their undoing, and
# incremental links (identity.master); other apps reach them here. (run_full, link_new and
# MasterError are re-exported in the records block above.)
from civicpulse.identity.master import (  # noqa: E402
    decide,
    explain,
    latest_model_run,
    merge,
    split,
    undo,
)
from civicpulse.identity.survivorship import RULES as SURVIVORSHIP_RULES  # noqa: E402

__all__ += [
    "SURVIVORSHIP_RULES",
    "decide",
    "explain",
    "latest_model_run",
    "merge",
    "split",
    "undo",
]
# --- end master index ---
from civicpulse.identity.access import AccountError, issue_account  # noqa: E402, F401
