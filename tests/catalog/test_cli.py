"""The catalog through the real ``civicpulse`` entry point, in its own data dir and store."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT, shared_data

pytestmark = pytest.mark.shared_data


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_register_load_versions_and_compare_from_the_command_line(tmp_path):
    source = shared_data("311/nyc_311_2019-12-31_atlas.csv")
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var")}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    made = _cli(
        env,
        "manage",
        "shell",
        "-c",
        "from civicpulse.core.models import Department; "
        "Department.objects.create(code='DSNY', name_zh='环卫局', name_en='Sanitation')",
    )
    if made.returncode:  # the store is created on first use
        assert _cli(env, "migrate").returncode == 0
        made = _cli(env, "manage", "shell", "-c", made.args[-1])
    assert made.returncode == 0, made.stderr

    done = _cli(
        env, "catalog", "register", "nyc311", "--title", "纽约 311", "--department", "DSNY",
        "--frequency", "daily", "--tags", "311,工单",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dataset nyc311 registered for DSNY" in done.stdout
    again = _cli(env, "catalog", "register", "nyc311", "--title", "x", "--department", "DSNY")
    assert again.returncode == 2 and "already registered" in again.stderr

    loaded = _cli(env, "catalog", "load", "nyc311", str(source))
    assert loaded.returncode == 0, loaded.stderr
    assert "nyc311 version 1: 1000 rows" in loaded.stdout

    with open(source, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    edited = tmp_path / "edited.csv"
    with open(edited, "w", encoding="gb18030", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *rows[1:-5]])
    loaded = _cli(env, "catalog", "load", "nyc311", str(edited))
    assert loaded.returncode == 0, loaded.stderr
    assert "version 2: 995 rows" in loaded.stdout

    same = _cli(env, "catalog", "load", "nyc311", str(edited))
    assert same.returncode == 0 and "unchanged" in same.stdout and "version 2" in same.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    failed = _cli(env, "catalog", "load", "nyc311", str(broken))
    assert failed.returncode == 2
    assert f"civicpulse: {broken}: line 3 has 3 fields, the header has 2" in failed.stderr

    listed = _cli(env, "catalog", "versions", "nyc311")
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:3] == ["v1", "superseded", "1000"]
    assert lines[1].split()[:3] == ["v2", "current", "995"]

    compared = _cli(env, "catalog", "compare", "nyc311", "1", "2", "--key", "unique_key")
    assert compared.returncode == 0, compared.stderr
    assert "rows: 0 added, 5 removed, 0 changed, 995 unchanged" in compared.stdout

    # the NYC file has street addresses and no identifier of a person: tagged, graded general
    classified = _cli(env, "catalog", "classify", "nyc311")
    assert classified.returncode == 0, classified.stderr
    assert "  incident_address: address" in classified.stdout
    assert "proposed grade: general" in classified.stdout
    unknown = _cli(env, "catalog", "classify", "nyc311", "--version", "9")
    assert unknown.returncode == 2 and "has no version 9" in unknown.stderr

    audited = _cli(env, "audit", "verify")
    assert audited.returncode == 0 and "audit chain intact" in audited.stdout
