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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoSite:
    """The small demo city built and served by the real CLI (gunicorn) in its own data dir,
    as a city would run it; ``cli`` runs further commands against the same store."""

    def __init__(self, data_dir: Path, *, seed: int, end: str):
        self.data_dir = data_dir
        self.env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
        self.env.pop("CIVICPULSE_DATABASE_URL", None)
        self.bind = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.bind}"
        self.seed, self.end = seed, end
        self._server = None
        self._log = None

    def cli(self, *args: str, timeout: float = 120):
        import subprocess
        import sys

        return subprocess.run(
            [sys.executable, "-m", "civicpulse.cli", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def build(self) -> str:
        built = self.cli(
            "demo",
            "--size",
            "small",
            "--seed",
            str(self.seed),
            "--end",
            self.end,
            "--no-serve",
            timeout=600,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        return built.stdout

    def serve(self) -> None:
        import subprocess
        import sys
        import time
        import urllib.request

        self._log = open(self.data_dir / "server.log", "w")
        self._server = subprocess.Popen(
            [sys.executable, "-m", "civicpulse.cli", "serve", "--bind", self.bind],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                if time.monotonic() > deadline or self._server.poll() is not None:
                    self.stop()
                    pytest.fail(
                        f"server did not start: {(self.data_dir / 'server.log').read_text()}"
                    )
                time.sleep(0.3)

    def stop(self) -> None:
        import subprocess

        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
            self._server = None
        if self._log is not None:
            self._log.close()
            self._log = None


def run_cli(env: dict, *args: str, timeout: float = 300):
    """The real ``civicpulse`` entry point in a subprocess, with ``env`` (its own data dir)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
