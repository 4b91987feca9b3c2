"""Periodic analytics behind the cockpit."""

from __future__ import annotations

from civicpulse.cases import services as cases
from civicpulse.catalog import services as catalog
from civicpulse.core.queue import Run, job
from civicpulse.web import services


@job("cockpit.refresh", every=300, lease=120)
def refresh(run: Run) -> dict:
    """Export cases to the lake, then recompute the figures; a resumed run skips the export."""
    if not run.checkpoint.get("exported"):
        exported = cases.export_to_lake(progress=lambda p: run.save({}, progress=p * 0.8))
        catalog.record_lineage(
            ("store_table", "cases_case", "cases_case"),
            ("lake_table", cases.LAKE_TABLE, cases.LAKE_TABLE),
            "cockpit.refresh",
            {"rows": exported["rows"]},
        )
        run.save({"exported": exported["rows"]}, progress=0.8)
    result = services.refresh_figures()
    return {"exported": run.checkpoint["exported"], **result}
