"""A slow, checkpointed job for the worker tests: it works through numbered steps, leaves a
file per step with the attempt that did it, and checkpoints after each step."""

from __future__ import annotations

import time
from pathlib import Path

from civicpulse.core.queue import Run, job


@job("tests.steps", lease=2)
def steps(run: Run) -> dict:
    out = Path(run.payload["dir"])
    start = run.checkpoint.get("next", 0)
    for step in range(start, run.payload["steps"]):
        time.sleep(run.payload.get("pause", 0.0))
        marker = out / f"step-{step:03d}"
        marker.write_text(f"{marker.read_text() if marker.exists() else ''}{run.id}\n")
        run.save({"next": step + 1}, progress=(step + 1) / run.payload["steps"])
    return {"steps": run.payload["steps"], "resumed_from": start}


@job("tests.flaky", lease=2)
def flaky(run: Run) -> dict:
    out = Path(run.payload["dir"]) / "tries"
    tries = int(out.read_text()) + 1 if out.exists() else 1
    out.write_text(str(tries))
    if tries < 2:
        raise RuntimeError("first try fails on purpose")
    return {"tries": tries}
