"""The push API: what a good push stores and answers, and how each kind of hostile or broken
push is turned away, logged, and leaves what was stored before untouched.

Most tests go through Django's test client (each test's store is rolled back, so the demo city
other tests share is never flushed); the last ones send real HTTP with ``requests`` to the
platform served by its own CLI (gunicorn, two workers) in a data dir of its own, as a city runs
it. The lake outlives each test's database, so every test pushes under source names of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import requests

from civicpulse.opinion import api as push_api
from civicpulse.opinion import ingest
from tests.opinion import test_ingest
from tests.support import REPO_ROOT, free_port

PATH = "/api/v1/opinion/posts"
AREAS, _cli = test_ingest.AREAS, test_ingest._cli


def _source(kind: str = "push") -> tuple:
    return ingest.add_source(f"{kind}-{uuid.uuid4().hex[:8]}", kind)


@pytest.fixture
def partner(db, tmp_path):
    """A push source and its token, in a store with an area tree."""
    test_ingest.import_areas(tmp_path)
    return _source()


def _body(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


def _push(client, token: str | None, body, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(PATH, data=_body(body), content_type="application/json", headers=headers)


def _post(n: int, **changes) -> dict:
    post = {
        "id": f"m{n}",
        "text": f"滨江路{n}号楼下水道堵了三天，污水漫到人行道上 (message {n})",
        "created_at": f"2026-11-20T{8 + n % 10:02d}:{n % 60:02d}:00+08:00",
        "author": f"resident-{n}",
        "url": f"https://forum.example.invalid/{n}",
        "reach": 100 + n,
        "reposts": n % 4,
        "lon": 126.61,
        "lat": 45.76,
        "place": "松河区",
    }
    post.update(changes)
    return {k: v for k, v in post.items() if v is not ...}


def _rejections() -> list[tuple[int, str]]:
    from civicpulse.opinion.models import RejectedPush

    return list(RejectedPush.objects.order_by("at", "pk").values_list("status", "reason"))


def _batches() -> int:
    from civicpulse.opinion.models import IngestBatch

    # only pushes count: the demo city and other tests bring in files
    return IngestBatch.objects.filter(source__kind="push").count()


# --------------------------------------------------------------------------- a good push


def test_a_good_push_is_stored_and_each_bad_item_quarantined_by_index(client, partner):
    from civicpulse.core.models import Job
    from civicpulse.opinion.models import IngestBatch

    source, token = partner
    items = [
        _post(1),
        _post(2, created_at=...),  # 1: missing
        _post(3, created_at="2026-11-20 08:00"),  # 2: no offset
        _post(4, created_at=1795000000),  # 3: a number
        _post(5, reach=-4),  # 4
        "just text",  # 5
        _post(7, created_at="2099-01-01T00:00:00+08:00"),  # 6: the store refuses it
        _post(8, lon=None),  # 7: lat without lon (the store refuses it)
        _post(9, id=90009, author=None, url=None, place=None),  # numeric id, nulls
        _post(10),
    ]
    before = time.time()
    answer = _push(client, token, {"posts": items})
    assert answer.status_code == 202, answer.content
    result = answer.json()
    assert (result["received"], result["accepted"], result["quarantined"]) == (10, 3, 7)
    assert result["duplicates"] == 0
    problems = {p["index"]: (p["field"], p["reason"]) for p in result["problems"]}
    assert sorted(problems) == [1, 2, 3, 4, 5, 6, 7]
    assert problems[1] == ("created_at", "created_at: is missing")
    assert problems[2][0] == "created_at" and "has no offset" in problems[2][1]
    assert problems[3][0] == "created_at" and "ISO 8601" in problems[3][1]
    assert problems[4][0] == "reach" and "greater than or equal to 0" in problems[4][1]
    assert problems[5] == ("", "the item is not a JSON object")
    assert problems[6][0] == "created_at" and "future" in problems[6][1]
    assert problems[7][0] in ("lat", "lon")

    batch = IngestBatch.objects.get(pk=result["batch"])
    assert (batch.source_id, batch.name, batch.accepted) == (source.pk, "push", 3)
    assert _rejections() == []  # item-level problems do not reject the push
    minutes = {int(before // 60), int(time.time() // 60)}
    watch = Job.objects.filter(name="opinion.watch", key__startswith="opinion.watch:push:")
    assert {int(k.rsplit(":", 1)[1]) for k in watch.values_list("key", flat=True)} & minutes

    again = _push(client, token, {"posts": [_post(1), _post(9, id=90009), _post(11)]})
    assert again.status_code == 202
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 2)


def test_the_watch_job_is_queued_once_a_minute_and_for_the_next_when_taken(db):
    from civicpulse.core.models import Job

    now = 1_795_000_010.0
    push_api.queue_watch(now)
    push_api.queue_watch(now + 5)  # this minute's is queued: the next minute's too
    push_api.queue_watch(now + 9)  # both queued: nothing more
    jobs = Job.objects.filter(name="opinion.watch").order_by("run_after")
    minute = int(now // 60)
    assert [j.key for j in jobs] == [
        f"opinion.watch:push:{minute}",
        f"opinion.watch:push:{minute + 1}",
    ]
    assert jobs[1].run_after > jobs[0].run_after


# --------------------------------------------------------------------------- turned away


def test_who_is_not_an_active_push_source_gets_401_and_is_logged(client, partner):
    from civicpulse.opinion.models import RejectedPush, Source

    source, token = partner
    body = {"posts": [_post(1)]}
    missing = _push(client, None, body)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert missing.json() == {"detail": "the request has no Authorization: Bearer token"}
    basic = _push(client, None, body, Authorization="Basic dXNlcjpwYXNz")
    assert basic.json()["detail"] == "Authorization must be 'Bearer <token>'"
    wrong = _push(client, token[:-4] + "AAAA", body)
    assert wrong.json()["detail"] == "the token is not the token of a push source"
    assert _push(client, "x", body).status_code == 401

    renewed = ingest.new_token(source.name)
    assert _push(client, token, body).status_code == 401  # the old token stopped working
    Source.objects.filter(pk=source.pk).update(is_active=False)
    inactive = _push(client, renewed, body)
    assert inactive.status_code == 401
    assert inactive.json()["detail"] == f"source {source.name} is not active"

    logged = list(RejectedPush.objects.order_by("pk").values_list("status", "source", "client"))
    assert len(logged) == 6 and {s for s, _, _ in logged} == {401}
    assert logged[-1][1] == source.pk and {c for _, _, c in logged} == {"127.0.0.1"}
    assert _batches() == 0


def test_a_body_too_large_or_too_many_posts_gets_413_before_anything_is_stored(client, partner):
    _source_, token = partner
    big = {"posts": [_post(1, text="长" * 9000)] * 60}  # ~1.6 MB of JSON
    assert len(_body(big)) > push_api.MAX_BODY
    oversized = _push(client, token, big)
    assert oversized.status_code == 413
    assert oversized.json()["detail"].startswith(
        f"the body is larger than {push_api.MAX_BODY:,} bytes"
    )
    many = _push(client, token, {"posts": [_post(i) for i in range(push_api.MAX_POSTS + 1)]})
    assert many.status_code == 413
    assert many.json()["detail"] == (
        f"{push_api.MAX_POSTS + 1:,} posts; at most {push_api.MAX_POSTS} a request"
    )
    assert [s for s, _ in _rejections()] == [413, 413]
    assert _batches() == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "the body is empty"),
        (b"posts=1&text=hello", "the body is not valid JSON: Expecting value"),
        (b'{"posts": [', "the body is not valid JSON"),
        (b"\xff\xfe{}", "the body is not UTF-8 text (byte 1)"),
        (b'{"posts": [{"id": "1", "lon": NaN}]}', "the body is not valid JSON: NaN is not"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not valid JSON"),
        (b"[1, 2]", 'the body must be a JSON object {"posts": [...]}'),
        (b'{"post": []}', 'the body must be a JSON object {"posts": [...]}'),
        (b'{"posts": {"id": 1}}', "posts must be a list of post objects"),
        (b'{"posts": []}', "posts is empty"),
    ],
)
def test_a_body_that_is_not_the_expected_json_gets_400_saying_why(client, partner, body, detail):
    _source_, token = partner
    answer = _push(client, token, body)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)
    assert _rejections() == [(400, answer.json()["detail"][:300])]
    assert _batches() == 0


def test_a_flood_from_one_source_gets_429_and_is_logged(client, partner):
    from civicpulse.opinion.models import RejectedPush

    if time.time() % 60 > 55:  # let the flood share one minute's window
        time.sleep(61 - time.time() % 60)
    source, token = partner
    limit = push_api.PUSHES_PER_MINUTE
    answers = [_push(client, token, b"{") for _ in range(limit + 1)]
    assert [a.status_code for a in answers] == [400] * limit + [429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert (
        answers[-1]
        .json()["detail"]
        .startswith(f"more than {limit} pushes a minute from source {source.name}")
    )
    assert _push(client, token, {"posts": [_post(1)]}).status_code == 429  # valid, too many
    assert RejectedPush.objects.filter(status=429, source=source).count() == 2
    assert _batches() == 0


# --------------------------------------------------------------------------- the API's document


def test_the_openapi_document_describes_the_push_and_its_answers(client):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"][PATH]["post"]
    assert set(operation["responses"]) >= {"202", "400", "401", "413", "429"}
    (scheme,) = operation["security"][0]
    assert document["components"]["securitySchemes"][scheme]["scheme"] == "bearer"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["posts"]["maxItems"] == push_api.MAX_POSTS
    item = body["properties"]["posts"]["items"]
    assert {"id", "text", "created_at"} <= set(item["required"])


def test_the_api_pages_load_their_scripts_from_our_own_static_files(client):
    """Air-gapped intranets cannot reach a CDN: Swagger UI must come from django-ninja's own
    static files, which Django finds only when "ninja" is an installed app."""
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html
    assert "/static/ninja/swagger-ui-bundle.js" in html
    script = client.get("/static/ninja/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(b"".join(script.streaming_content)) > 100_000


# --------------------------------------------------------------------------- over the wire


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The platform served by ``civicpulse serve`` (gunicorn) over a data dir with an area tree
    and two push sources made by the CLI; yields (base URL, {source name: token})."""
    root = tmp_path_factory.mktemp("push-served")
    data = root / "data"
    data.mkdir()
    areas = root / "areas.geojson"
    areas.write_text(json.dumps(AREAS), encoding="utf-8")
    assert _cli(data, "import", "areas", str(areas)).returncode == 0
    tokens = {}
    for name in ("partner", "flood"):
        made = _cli(data, "sources", "add", name, "--kind", "push")
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.splitlines()[-1]
    bind = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "CIVICPULSE_DATABASE_URL"}
    env["CIVICPULSE_DATA_DIR"] = str(data)
    with open(root / "server.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "civicpulse.cli", "serve", "--bind", bind],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://{bind}/healthz", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        pytest.fail(f"server did not start: {(root / 'server.log').read_text()}")
                    time.sleep(0.3)
            yield f"http://{bind}", tokens
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _send(session, url: str, token: str | None, body) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    # a fresh machine trains the sentiment model on the first push: allow for it
    return session.post(url + PATH, data=_body(body), headers=headers, timeout=120)


def test_over_http_an_accepted_batch_survives_later_hostile_pushes(served):
    url, tokens = served
    token = tokens["partner"]
    posts = [_post(n) for n in range(1, 6)]
    with requests.Session() as s:
        accepted = _send(s, url, token, {"posts": posts})
        assert accepted.status_code == 202, accepted.text
        assert (accepted.json()["accepted"], accepted.json()["quarantined"]) == (5, 0)
        hostile = [
            _send(s, url, "cpp_guessed-token-value", {"posts": posts}),
            _send(s, url, None, {"posts": posts}),
            _send(s, url, token, b'{"posts": [' + b'{"id": "x"},' * 200_000 + b"]}"),
            _send(s, url, token, b'{"posts": [{"id": "1", "text": '),
            _send(s, url, token, {"posts": "DROP TABLE opinion_ingestbatch"}),
            _send(s, url, token, {"posts": [_post(1)] * (push_api.MAX_POSTS + 1)}),
        ]
        assert [a.status_code for a in hostile] == [401, 401, 413, 400, 400, 413]
        assert hostile[0].headers["WWW-Authenticate"].startswith("Bearer")
        again = _send(s, url, token, {"posts": posts})  # still stored: all duplicates now
    assert again.status_code == 202
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 5)
    assert again.json()["batch"] != accepted.json()["batch"]


def test_over_http_a_flood_gets_429_and_another_source_still_pushes(served):
    url, tokens = served
    limit = push_api.PUSHES_PER_MINUTE
    answers = []
    with requests.Session() as s:
        for _ in range(2 * limit + 1):  # a minute may turn over once during the flood
            answers.append(_send(s, url, tokens["flood"], b"{"))
            if answers[-1].status_code == 429:
                break
        assert answers[-1].status_code == 429, [a.status_code for a in answers]
        assert {a.status_code for a in answers[:-1]} == {400}
        assert len(answers) > limit
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
        other = _send(s, url, tokens["partner"], {"posts": [_post(99)]})
    assert other.status_code == 202 and other.json()["accepted"] == 1
