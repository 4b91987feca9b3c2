"""Wrong settings stop start-up with one clear line (exit 2), never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from civicpulse import config
from tests.support import REPO_ROOT


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "data"), **env}
    for name in ("CIVICPULSE_DATABASE_URL", "CIVICPULSE_ENGINE", "CIVICPULSE_REDIS_URL"):
        if name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"CIVICPULSE_DATABASE_URL": "mysql://root@127.0.0.1/x"}, ["scheme", "mysql"]),
        (
            {"CIVICPULSE_DATABASE_URL": "postgres://postgres@127.0.0.1:{port}/x"},
            ["cannot reach the database", "CIVICPULSE_DATABASE_URL"],
        ),
        ({"CIVICPULSE_ENGINE": "hadoop"}, ["CIVICPULSE_ENGINE", "duckdb, spark"]),
        ({"CIVICPULSE_TIME_ZONE": "Mars/Olympus"}, ["CIVICPULSE_TIME_ZONE"]),
        ({"CIVICPULSE_LANGUAGE": "fr"}, ["CIVICPULSE_LANGUAGE"]),
    ],
)
def test_bad_settings_give_one_line(tmp_path, env, words):
    env = {k: v.format(port=_closed_port()) for k, v in env.items()}
    _one_line(_cli(tmp_path, "check", **env), *words)


def test_unwritable_data_dir_gives_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _cli(tmp_path, "check", CIVICPULSE_DATA_DIR=str(blocker / "data"))
    _one_line(result, "not writable", "CIVICPULSE_DATA_DIR")


def test_unreachable_spark_master_gives_one_line(tmp_path):
    master = f"spark://127.0.0.1:{_closed_port()}"
    result = _cli(
        tmp_path, "check", "--engine", CIVICPULSE_ENGINE="spark", CIVICPULSE_SPARK_MASTER=master
    )
    _one_line(result, master)


def test_good_settings_check_passes(tmp_path):
    result = _cli(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert "sqlite" in result.stdout


def test_help_lists_the_commands(tmp_path):
    result = _cli(tmp_path, "--help")
    for command in (
        "demo",
        "serve",
        "migrate",
        "createadmin",
        "worker",
        "import",
        "audit",
        "train",
        "apikey",
    ):
        assert command in result.stdout


def test_audit_verify_from_the_command_line(tmp_path):
    """`civicpulse audit verify` passes on a fresh chain and exits 1 naming a tampered entry."""
    import sqlite3

    assert _cli(tmp_path, "createadmin", "root", "--password", "s3cret-Pass").returncode == 0
    assert _cli(tmp_path, "createadmin", "second", "--password", "s3cret-Pass").returncode == 0
    ok = _cli(tmp_path, "audit", "verify")
    assert ok.returncode == 0 and "intact: 2 entries" in ok.stdout
    db = sqlite3.connect(tmp_path / "data" / "civicpulse.sqlite3")
    db.execute("UPDATE core_auditentry SET action = 'nothing.happened' WHERE seq = 1")
    db.commit()
    broken = _cli(tmp_path, "audit", "verify")
    assert broken.returncode == 1
    assert "entry 1" in broken.stdout and "changed" in broken.stdout


def test_config_table_in_readme_matches_the_code():
    readme = (REPO_ROOT / "README.md").read_text()
    assert config.readme_table() in readme


def test_apikey_is_created_and_printed(tmp_path):
    assert _cli(tmp_path, "migrate").returncode == 0
    made = _cli(tmp_path, "apikey", "city app")
    assert made.returncode == 0 and len(made.stdout.strip()) >= 40
