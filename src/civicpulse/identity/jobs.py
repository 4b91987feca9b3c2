"""Periodic work of the master index.

``identity.sync`` takes in what changed at every source and links just those records;
``identity.relink`` retrains and relinks each kind from scratch once a day (stable codes survive
it). Both are safe to run twice: an unchanged row writes nothing, and what waits to be linked is
read from the store (records whose ``linked_by`` is empty), not from the run that found it, so a
sync that stopped between ingesting and linking is finished by the next one.
"""

from __future__ import annotations

from civicpulse.core.queue import Run, job


@job("identity.sync", every=15 * 60, lease=30 * 60)
def sync(run: Run) -> dict:
    """Sync every readable source, then link the new and changed records incrementally (the
    first time a kind has records, with a full run: there is no trained model to reuse yet)."""
    from civicpulse.identity import master, records
    from civicpulse.identity.models import Kind

    synced = records.sync_all(actor="worker")
    result = {
        "sources": {
            name: report.counts() if isinstance(report, records.IngestReport) else report
            for name, report in synced.items()
        }
    }
    run.save({"synced": sorted(synced)}, progress=0.5)
    for kind in Kind.values:
        waiting = records.pending(kind)
        if not waiting:
            result[f"linked_{kind}"] = 0
            continue
        try:
            master.latest_model_run(kind)
        except master.MasterError:  # no trained model yet: the first run trains on everything
            master.run_full(kind, actor="worker")
        else:
            master.link_new(waiting, actor="worker")
        result[f"linked_{kind}"] = len(waiting)
    return result


@job("identity.relink", every=24 * 3600, lease=6 * 3600)
def relink(run: Run) -> dict:
    """A full run per kind: the model retrained on everything, every record linked again.

    A kind done before an interruption is not run again when the job resumes."""
    from civicpulse.identity import master
    from civicpulse.identity.models import Kind, SourceRecord

    done = dict(run.checkpoint.get("done", {}))
    for kind in Kind.values:
        if kind in done:
            continue
        if SourceRecord.objects.filter(kind=kind).exists():
            done[kind] = master.run_full(kind, actor="worker").pk
        else:
            done[kind] = None  # no records of this kind: nothing to train on
        run.save({"done": done}, progress=len(done) / len(Kind.values))
    return {"runs": done}
