"""The job queue: idempotent enqueueing, retries, periodic slots, and a killed worker's job
resumed from its checkpoint by another worker — on the store and on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import tests.core.jobs_for_tests  # noqa: F401  (registers the test jobs)
from civicpulse.core import queue as q
from civicpulse.core.models import Job
from tests.support import REPO_ROOT, unavailable


@pytest.fixture
def store_queue(db):
    return q.StoreQueue()


@pytest.fixture
def redis_queue(db):
    url = os.environ.get("CIVICPULSE_TEST_REDIS_URL")
    if not url:
        unavailable("CIVICPULSE_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)")
    rq = q.RedisQueue(url)
    try:
        rq.redis.ping()
    except Exception as exc:
        unavailable(f"Redis at {url} does not answer: {exc}")
    for key in rq.redis.scan_iter(rq.prefix + "*"):
        rq.redis.delete(key)
    return rq


@pytest.fixture(params=["store", "redis"])
def any_queue(request):
    return request.getfixturevalue(f"{request.param}_queue")


def test_same_key_is_queued_once(any_queue, tmp_path):
    first = any_queue.enqueue("tests.steps", {"dir": str(tmp_path), "steps": 1}, key="k1")
    again = any_queue.enqueue("tests.steps", {"dir": str(tmp_path), "steps": 1}, key="k1")
    assert first and again is None


def test_unknown_job_is_refused(any_queue):
    with pytest.raises(KeyError, match="no job is registered"):
        any_queue.enqueue("no.such.job")


def test_worker_runs_jobs_and_reports(any_queue, tmp_path):
    job_id = any_queue.enqueue("tests.steps", {"dir": str(tmp_path), "steps": 3})
    worker = q.Worker(any_queue, names=["tests.steps"])
    assert worker.run_one() is True
    state = any_queue.state(job_id)
    assert state["state"] == "done" and state["result"] == {"steps": 3, "resumed_from": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000", "step-001", "step-002"]
    assert worker.run_one() is False  # nothing left


def test_a_failed_job_is_retried_not_lost(any_queue, tmp_path):
    job_id = any_queue.enqueue("tests.flaky", {"dir": str(tmp_path)})
    worker = q.Worker(any_queue, names=["tests.flaky"])
    worker.run_one()
    state = any_queue.state(job_id)
    assert state["state"] == "queued" and "on purpose" in state["error"]
    time.sleep(2.1)  # the back-off after the first attempt
    worker.run_one()
    assert any_queue.state(job_id)["state"] == "done"


def test_periodic_job_runs_once_per_slot(store_queue):
    spec = q.REGISTRY["cockpit.refresh"]
    store_queue.enqueue_periodic(spec, now=1_000_000.0)
    store_queue.enqueue_periodic(spec, now=1_000_001.0)  # same slot
    assert Job.objects.filter(key__startswith="cockpit.refresh@").count() == 1
    store_queue.enqueue_periodic(spec, now=1_000_000.0 + spec.every)  # the next slot
    assert Job.objects.filter(key__startswith="cockpit.refresh@").count() == 2


def _worker(env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "civicpulse.cli",
            "worker",
            "--import",
            "tests.core.jobs_for_tests",
            "--only",
            "tests.steps",
            "--poll",
            "0.2",
            *extra,
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("backend", ["store", "redis"])
def test_killed_worker_resumes_from_checkpoint(backend, tmp_path):
    """A worker is killed (SIGKILL) mid-job; a second worker takes the job over once the lease
    runs out and finishes it from the checkpoint: every step done, none done twice."""
    env = {
        **os.environ,
        "CIVICPULSE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("CIVICPULSE_DATABASE_URL", None)
    if backend == "redis":
        url = os.environ.get("CIVICPULSE_TEST_REDIS_URL")
        if not url:
            unavailable("CIVICPULSE_TEST_REDIS_URL is not set")
        env["CIVICPULSE_REDIS_URL"] = url
        import redis

        client = redis.Redis.from_url(url)
        for key in client.scan_iter("civicpulse:jobs:*"):
            client.delete(key)
    subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    out = tmp_path / "steps"
    out.mkdir()
    payload = f'{{"dir": "{out}", "steps": 12, "pause": 0.25}}'
    subprocess.run(
        [
            sys.executable,
            "-m",
            "civicpulse.cli",
            "enqueue",
            "tests.steps",
            "--payload",
            payload,
            "--key",
            "resume-me",
            "--import",
            "tests.core.jobs_for_tests",
        ],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    first = _worker(env)
    deadline = time.monotonic() + 60
    while len(list(out.iterdir())) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = len(list(out.iterdir()))
    assert 4 <= done_before < 12, "the first worker should have been killed mid-job"

    time.sleep(2.5)  # the killed worker's lease (2 s) runs out
    second = _worker(env, "--burst")
    try:
        second.wait(timeout=90)
    except subprocess.TimeoutExpired:
        second.kill()
        raise
    markers = sorted(out.iterdir())
    assert [m.name for m in markers] == [f"step-{i:03d}" for i in range(12)]
    runs = [m.read_text().splitlines() for m in markers]
    assert all(len(r) == 1 for r in runs[: done_before - 1]), "checkpointed steps were redone"
    # at most the one step under way at the kill ran twice
    assert sum(len(r) for r in runs) <= 13
    _assert_resumed(backend, env, tmp_path, done_before)


def _assert_resumed(backend: str, env: dict, tmp_path, done_before: int) -> None:
    """The job ended done, on its second attempt, starting from the saved checkpoint."""
    import json
    import sqlite3

    if backend == "store":
        db = sqlite3.connect(tmp_path / "data" / "civicpulse.sqlite3")
        state, attempts, result = db.execute(
            "SELECT state, attempts, result FROM core_job WHERE key = 'resume-me'"
        ).fetchone()
        result = json.loads(result)
    else:
        import redis

        client = redis.Redis.from_url(env["CIVICPULSE_REDIS_URL"], decode_responses=True)
        job_id = next(k for k in client.scan_iter("civicpulse:jobs:job:*"))
        data = client.hgetall(job_id)
        state, attempts, result = data["state"], int(data["attempts"]), json.loads(data["result"])
    assert (state, attempts) == ("done", 2)
    assert result["resumed_from"] in (done_before - 1, done_before)
