"""What other apps may ask of the market register: its rows, for the master index."""

from __future__ import annotations

from collections.abc import Iterator

from civicpulse.enterprise.models import Enterprise

__all__ = ["register_rows"]


def register_rows(batch: int = 5_000) -> Iterator[dict]:
    """Each registered enterprise in the master index's attribute names, keyed by its row in
    the register; streamed, so a city's whole register never sits in memory."""
    fields = ("pk", "uscc", "name", "legal_representative", "industry_code")
    for pk, uscc, name, representative, industry in (
        Enterprise.objects.order_by("pk").values_list(*fields).iterator(chunk_size=batch)
    ):
        yield {
            "key": str(pk),
            "name": name,
            "uscc": uscc,
            "legal_representative": representative or None,
            "industry_code": industry or None,
        }
