"""The same migrations run on PostgreSQL, through the real command line, on a fresh database.

(`make test` also runs the store's whole suite again on PostgreSQL; this test makes the
requirement visible in the first pass, so a missing server fails CI rather than skipping.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import REPO_ROOT, unavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_postgres_url():
    base = os.environ.get("CIVICPULSE_TEST_DATABASE_URL")
    if not base:
        unavailable("CIVICPULSE_TEST_DATABASE_URL is not set (postgres://user@host:5432/name)")
    import psycopg

    parts = urlsplit(base)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    name = f"civicpulse_migrate_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {parts.hostname}:{parts.port} does not answer: {exc}")
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path), "CIVICPULSE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_migrations_and_audit_chain_on_postgres(tmp_path, fresh_postgres_url):
    import psycopg

    migrated = _cli(tmp_path, fresh_postgres_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (
        _cli(
            tmp_path, fresh_postgres_url, "createadmin", "root", "--password", "s3cret-Pass"
        ).returncode
        == 0
    )
    verified = _cli(tmp_path, fresh_postgres_url, "audit", "verify")
    assert verified.returncode == 0 and "intact: 1 entries" in verified.stdout
    with psycopg.connect(fresh_postgres_url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        applied = conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    assert {
        "core_area",
        "core_auditentry",
        "core_job",
        "cases_case",
        "identity_resident",
        "enterprise_enterprise",
        "web_casefigure",
    } <= tables
    assert applied > 10
    # nothing left for makemigrations to find: models and migrations agree
    check = _cli(tmp_path, fresh_postgres_url, "manage", "makemigrations", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
