"""Background and periodic work: a job registry, two queues (the store, or Redis) and a worker.

Jobs are registered with :func:`job` in each app's ``jobs.py``. A handler receives a
:class:`Run`, through which it reads and saves its checkpoint and reports progress; a handler
must be idempotent (running it twice leaves the same state) because a job whose worker is
killed is run again, from its last checkpoint, once the lease runs out.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from civicpulse.core.models import Job

log = logging.getLogger("civicpulse.worker")


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Callable[[Run], dict | None]
    every: int | None = None  # seconds, for periodic jobs
    lease: int = 60


REGISTRY: dict[str, JobSpec] = {}


def job(name: str, *, every: int | None = None, lease: int = 60):
    """Register a handler under ``name``; ``every`` makes it periodic (in seconds)."""

    def register(handler):
        REGISTRY[name] = JobSpec(name, handler, every, lease)
        return handler

    return register


@dataclass
class Run:
    """A handler's view of its job: payload, checkpoint and progress."""

    queue: BaseQueue
    id: str
    name: str
    payload: dict
    checkpoint: dict = field(default_factory=dict)

    def save(self, checkpoint: dict, progress: float | None = None) -> None:
        """Record how far the job got; a resumed run starts from here."""
        self.checkpoint = checkpoint
        self.queue.save_checkpoint(self.id, checkpoint, progress)


class BaseQueue:
    def enqueue(
        self, name: str, payload: dict | None = None, *, key: str | None = None, delay: float = 0
    ) -> str | None:
        raise NotImplementedError

    def enqueue_periodic(self, spec: JobSpec, now: float) -> None:
        raise NotImplementedError

    def claim(self, owner: str, names: list[str]) -> Run | None:
        raise NotImplementedError

    def extend(self, job_id: str, owner: str, seconds: int) -> None:
        raise NotImplementedError

    def save_checkpoint(self, job_id: str, checkpoint: dict, progress: float | None) -> None:
        raise NotImplementedError

    def finish(self, job_id: str, owner: str, result: dict) -> None:
        raise NotImplementedError

    def fail(self, job_id: str, owner: str, error: str) -> None:
        raise NotImplementedError

    def state(self, job_id: str) -> dict:
        raise NotImplementedError


def _check_name(name: str) -> JobSpec:
    if name not in REGISTRY:
        raise KeyError(f"no job is registered as {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


class StoreQueue(BaseQueue):
    """The embedded queue: jobs are rows of the operational store.

    Claiming is a compare-and-set UPDATE, which is atomic on SQLite and PostgreSQL alike, so
    several workers can share one store.
    """

    def enqueue(self, name, payload=None, *, key=None, delay=0):
        _check_name(name)
        key = key or f"{name}:{uuid.uuid4().hex}"
        try:
            with transaction.atomic():
                row = Job.objects.create(
                    key=key,
                    name=name,
                    payload=payload or {},
                    run_after=timezone.now() + timedelta(seconds=delay),
                )
        except IntegrityError:
            return None  # the same job is already waiting or running
        return str(row.pk)

    def enqueue_periodic(self, spec, now):
        key = f"{spec.name}@{int(now // spec.every)}"
        if not Job.objects.filter(key=key).exists():
            self.enqueue(spec.name, key=key)

    def claim(self, owner, names):
        now = timezone.now()
        Job.objects.filter(
            state=Job.State.RUNNING, lease_until__lt=now, attempts__gte=F("max_attempts")
        ).update(
            state=Job.State.FAILED,
            finished_at=now,
            lease_until=None,
            error="its worker was lost on every attempt",
        )
        ready = Q(state=Job.State.QUEUED, run_after__lte=now) | Q(
            state=Job.State.RUNNING, lease_until__lt=now
        )
        for candidate in Job.objects.filter(ready, name__in=names).order_by("run_after", "id")[:5]:
            lease = REGISTRY[candidate.name].lease
            taken = Job.objects.filter(
                pk=candidate.pk,
                state=candidate.state,
                lease_until=candidate.lease_until,
                attempts=candidate.attempts,
            ).update(
                state=Job.State.RUNNING,
                lease_owner=owner,
                attempts=F("attempts") + 1,
                lease_until=now + timedelta(seconds=lease),
            )
            if taken:
                row = Job.objects.get(pk=candidate.pk)
                return Run(self, str(row.pk), row.name, row.payload, row.checkpoint or {})
        return None

    def extend(self, job_id, owner, seconds):
        Job.objects.filter(pk=job_id, lease_owner=owner, state=Job.State.RUNNING).update(
            lease_until=timezone.now() + timedelta(seconds=seconds)
        )

    def save_checkpoint(self, job_id, checkpoint, progress):
        fields = {"checkpoint": checkpoint}
        if progress is not None:
            fields["progress"] = progress
        Job.objects.filter(pk=job_id).update(**fields)

    def finish(self, job_id, owner, result):
        Job.objects.filter(pk=job_id, lease_owner=owner).update(
            state=Job.State.DONE,
            result=result,
            progress=1.0,
            finished_at=timezone.now(),
            lease_until=None,
        )

    def fail(self, job_id, owner, error):
        row = Job.objects.get(pk=job_id)
        if row.attempts >= row.max_attempts:
            update = {"state": Job.State.FAILED, "finished_at": timezone.now()}
        else:  # back off and try again
            update = {
                "state": Job.State.QUEUED,
                "run_after": timezone.now() + timedelta(seconds=2**row.attempts),
            }
        Job.objects.filter(pk=job_id, lease_owner=owner).update(
            error=error[-4000:], lease_until=None, **update
        )

    def state(self, job_id):
        row = Job.objects.get(pk=job_id)
        return {
            "state": row.state,
            "attempts": row.attempts,
            "result": row.result,
            "checkpoint": row.checkpoint,
            "progress": row.progress,
            "error": row.error,
        }


# A job is claimed atomically in Redis: the first due id moves from the ready set to the lease
# set, or an id whose lease ran out is taken over by the new owner.
_CLAIM = """
local now = tonumber(ARGV[1])
local owner = ARGV[2]
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
local id = expired[1]
if not id then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  id = due[1]
  if not id then return nil end
  redis.call('ZREM', KEYS[1], id)
end
local lease = tonumber(redis.call('HGET', ARGV[3] .. id, 'lease'))
redis.call('ZADD', KEYS[2], now + lease, id)
redis.call('HSET', ARGV[3] .. id, 'owner', owner, 'state', 'running')
redis.call('HINCRBY', ARGV[3] .. id, 'attempts', 1)
return id
"""


class RedisQueue(BaseQueue):
    """The same queue on Redis, for cities running several workers on several machines."""

    prefix = "civicpulse:jobs:"

    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        self.ready, self.leases = self.prefix + "ready", self.prefix + "leases"
        self._claim = self.redis.register_script(_CLAIM)

    def _job(self, job_id: str) -> str:
        return self.prefix + "job:" + job_id

    def enqueue(self, name, payload=None, *, key=None, delay=0):
        spec = _check_name(name)
        key = key or f"{name}:{uuid.uuid4().hex}"
        job_id = uuid.uuid4().hex
        if not self.redis.set(self.prefix + "live:" + key, job_id, nx=True):
            return None
        self.redis.hset(
            self._job(job_id),
            mapping={
                "name": name,
                "key": key,
                "payload": json.dumps(payload or {}),
                "state": "queued",
                "attempts": 0,
                "lease": spec.lease,
                "checkpoint": "{}",
                "progress": 0,
            },
        )
        self.redis.zadd(self.ready, {job_id: time.time() + delay})
        return job_id

    def enqueue_periodic(self, spec, now):
        key = f"{spec.name}@{int(now // spec.every)}"
        if self.redis.set(self.prefix + "slot:" + key, 1, nx=True, ex=2 * spec.every):
            self.enqueue(spec.name, key=key)

    def claim(self, owner, names):
        job_id = self._claim(
            keys=[self.ready, self.leases], args=[time.time(), owner, self.prefix + "job:"]
        )
        if job_id is None:
            return None
        data = self.redis.hgetall(self._job(job_id))
        if data.get("name") not in names:  # a job this worker doesn't know: leave it for others
            self.redis.zrem(self.leases, job_id)
            self.redis.zadd(self.ready, {job_id: time.time() + 5})
            return None
        return Run(
            self,
            job_id,
            data["name"],
            json.loads(data["payload"]),
            json.loads(data.get("checkpoint") or "{}"),
        )

    def extend(self, job_id, owner, seconds):
        if self.redis.hget(self._job(job_id), "owner") == owner:
            self.redis.zadd(self.leases, {job_id: time.time() + seconds}, xx=True)

    def save_checkpoint(self, job_id, checkpoint, progress):
        mapping = {"checkpoint": json.dumps(checkpoint)}
        if progress is not None:
            mapping["progress"] = progress
        self.redis.hset(self._job(job_id), mapping=mapping)

    def _end(self, job_id: str, mapping: dict) -> None:
        data = self.redis.hgetall(self._job(job_id))
        pipe = self.redis.pipeline()
        pipe.zrem(self.leases, job_id)
        pipe.hset(self._job(job_id), mapping=mapping)
        pipe.delete(self.prefix + "live:" + data.get("key", ""))
        pipe.expire(self._job(job_id), 7 * 86400)
        pipe.execute()

    def finish(self, job_id, owner, result):
        self._end(job_id, {"state": "done", "result": json.dumps(result), "progress": 1})

    def fail(self, job_id, owner, error):
        attempts = int(self.redis.hget(self._job(job_id), "attempts") or 0)
        if attempts >= 5:
            self._end(job_id, {"state": "failed", "error": error[-4000:]})
            return
        self.redis.zrem(self.leases, job_id)
        self.redis.hset(self._job(job_id), mapping={"state": "queued", "error": error[-4000:]})
        self.redis.zadd(self.ready, {job_id: time.time() + 2**attempts})

    def state(self, job_id):
        data = self.redis.hgetall(self._job(job_id))
        return {
            "state": data.get("state"),
            "attempts": int(data.get("attempts", 0)),
            "result": json.loads(data.get("result") or "{}"),
            "checkpoint": json.loads(data.get("checkpoint") or "{}"),
            "progress": float(data.get("progress") or 0),
            "error": data.get("error", ""),
        }


def get_queue() -> BaseQueue:
    from django.conf import settings

    url = settings.CONFIG.redis_url
    return RedisQueue(url) if url else StoreQueue()


def enqueue(
    name: str, payload: dict | None = None, *, key: str | None = None, delay: float = 0
) -> str | None:
    return get_queue().enqueue(name, payload, key=key, delay=delay)


class Worker:
    """Runs due jobs one at a time, keeping each job's lease alive while it runs."""

    def __init__(
        self, queue: BaseQueue | None = None, *, poll: float = 1.0, names: list[str] | None = None
    ):
        self.queue = queue or get_queue()
        self.poll = poll
        self.names = names or sorted(REGISTRY)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = False

    def schedule(self) -> None:
        now = time.time()
        for name in self.names:
            spec = REGISTRY[name]
            if spec.every:
                self.queue.enqueue_periodic(spec, now)

    def run_one(self) -> bool:
        """Claim and run one due job; False when none was due."""
        if not connection.in_atomic_block:  # never drop a connection mid-transaction
            close_old_connections()
        run = self.queue.claim(self.owner, self.names)
        if run is None:
            return False
        spec = REGISTRY[run.name]
        done = threading.Event()

        def keep_lease() -> None:
            while not done.wait(max(spec.lease / 3, 0.2)):
                try:
                    self.queue.extend(run.id, self.owner, spec.lease)
                except Exception:  # a busy store must not end the keeper: try again next beat
                    log.warning("could not extend the lease of job %s", run.id, exc_info=True)
            close_old_connections()

        keeper = threading.Thread(target=keep_lease, daemon=True)
        keeper.start()
        started = time.monotonic()
        try:
            result = spec.handler(run) or {}
        except Exception as exc:  # a failed job is recorded and retried, never lost
            log.exception("job %s (%s) failed", run.name, run.id)
            self.queue.fail(run.id, self.owner, f"{type(exc).__name__}: {exc}")
        else:
            self.queue.finish(run.id, self.owner, result)
            log.info("job %s (%s) done in %.1fs", run.name, run.id, time.monotonic() - started)
        finally:
            done.set()
            keeper.join()
        return True

    def run(self, *, burst: bool = False, until: datetime | None = None) -> None:
        """Loop until stopped; ``burst`` stops once nothing is due."""
        while not self.stopping:
            self.schedule()
            if self.run_one():
                continue
            if burst or (until and timezone.now() >= until):
                return
            time.sleep(self.poll)
