"""Open311 under load: ``GET requests.json`` (a full page of 1,000 requests) beside ``/healthz``
(the same stack answering with nothing to do) on one server, both hammered by ``wrk``.

    .venv/bin/python -m benchmarks.open311 [--seconds 10]

builds the small demo in a temporary data dir, serves it with ``civicpulse serve`` (gunicorn,
as in production) and prints the rows for docs/benchmarks.md. Needs ``wrk`` (Debian: ``apt-get
install wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_END = date(2026, 11, 26)
# The demo's last 90 days, spelled out so that the page is full (1,000 requests) whatever day
# the benchmark runs on; without dates the spec's window is the 90 days before today.
REQUESTS = (
    "/open311/v2/requests.json"
    "?start_date=2026-08-29T00:00:00%2B08:00&end_date=2026-11-26T23:59:59%2B08:00"
)
THREADS, CONNECTIONS = 2, 4


@dataclass(frozen=True)
class Load:
    rps: float
    p99_ms: float
    requests: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, seconds: int = 10) -> Load:
    """Requests per second and the 99th percentile latency of ``url`` under ``wrk``."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    run = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = run.stdout
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if failed or (errors and re.search(r"[1-9]", errors.group(1))):
        raise RuntimeError(f"wrk saw failures against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE).groups()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return Load(rps, float(value) * _UNITS[unit], total)


def bench_open311(base_url: str, seconds: int = 10) -> list[tuple[str, str, str, str]]:
    """``requests.json`` (1,000 a page) and ``/healthz`` on the same server, ``seconds`` each."""
    page = urllib.request.urlopen(base_url + REQUESTS, timeout=60).read()
    if page.count(b'"service_request_id"') != 1000:
        raise RuntimeError("the benchmark's window should hold a full page of 1,000 requests")
    for url in (base_url + REQUESTS, base_url + "/healthz"):  # warm both workers
        wrk(url, seconds=1)
    health = wrk(base_url + "/healthz", seconds)
    api = wrk(base_url + REQUESTS, seconds)
    setup = f"wrk {THREADS} threads, {CONNECTIONS} connections, {seconds} s"
    return [
        (
            f"Open311 GET requests.json, 1,000 requests a page ({setup}): throughput",
            f"{api.rps:,.1f} req/s",
            f"/healthz {health.rps:,.0f} req/s",
            f"{health.rps / api.rps:.0f}x fewer",
        ),
        (
            "Open311 GET requests.json, 1,000 requests a page: p99 latency",
            f"{api.p99_ms:,.0f} ms",
            f"/healthz {health.p99_ms:,.1f} ms",
            f"{api.p99_ms / health.p99_ms:.0f}x",
        ),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_demo(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    cli = [sys.executable, "-m", "civicpulse.cli"]
    end = DEMO_END.isoformat()
    subprocess.run(
        [*cli, "demo", "--size", "small", "--seed", "2260", "--end", end, "--no-serve"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=900,
    )
    bind = f"127.0.0.1:{_free_port()}"
    log = open(data_dir / "server.log", "w")
    server = subprocess.Popen(
        [*cli, "serve", "--bind", bind], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://{bind}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            return server, url
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError((data_dir / "server.log").read_text()[-3000:]) from None
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per endpoint")
    args = parser.parse_args()
    from benchmarks.report import machine, table, write_section

    load = os.getloadavg()[0]  # what else the machine was doing
    data_dir = Path(tempfile.mkdtemp(prefix="civicpulse-bench-open311-"))
    server, url = _serve_demo(data_dir)
    try:
        rows = bench_open311(url, args.seconds)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    lines = [
        f"Measured {date.today().isoformat()} on {machine()} by `python -m benchmarks.open311` "
        "(small demo on SQLite, served by `civicpulse serve`: gunicorn, 2 sync workers; "
        f"1-minute load average {load:.1f} before it started). "
        "The baseline is `/healthz` on the same server in the same run.",
        "",
        *table(rows),
    ]
    write_section("Open311", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
