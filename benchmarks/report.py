"""What every benchmark shares: the machine line, and writing one section of
docs/benchmarks.md without disturbing the others."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def one_core() -> str:
    """Pin this process to one CPU (and the maths libraries to one thread), so a figure says
    what one core does whatever the machine."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity here)"


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best of ``repeat`` wall times in seconds: the least disturbed run."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def rate(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    """Items per second of ``fn`` over ``n`` items, from its best run."""
    return n / best(fn, repeat)


def table(rows: list[tuple[str, str, str, str]], head=("what", "figure", "baseline", "ratio")):
    return [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def write_section(heading: str, lines: list[str]) -> None:
    """Replace (or append) the section ``## heading`` of docs/benchmarks.md."""
    marker = f"## {heading}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    section = "\n".join([marker, "", *lines]).rstrip() + "\n"
    if marker in text:
        before, _, after = text.partition(marker)
        rest = after.split("\n## ", 1)
        text = before + section + (("\n## " + rest[1]) if len(rest) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
