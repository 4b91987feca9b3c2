"""What tests share: the rule that CI never skips, and where the shared data lives.

A newcomer's clone may lack PostgreSQL, Spark's Java, Debian's chromium or ``../shared/data``;
tests needing them skip there with the reason. ``.ci/run`` sets ``CIVICPULSE_TEST_REQUIRE_ALL=1``
so that in CI the same missing piece is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def required_everywhere() -> bool:
    return os.environ.get("CIVICPULSE_TEST_REQUIRE_ALL") == "1"


def unavailable(reason: str) -> None:
    """Skip for a newcomer, fail in CI."""
    if required_everywhere():
        pytest.fail(f"required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def shared_data(relative: str) -> Path:
    """A file under ../shared/data, read in place (never copied into the project)."""
    path = SHARED_DATA / relative
    if not path.exists():
        unavailable(f"{path} is missing: the real test data lives in ../shared/data")
    return path
