"""A real server for the browser: the demo built and served by the CLI, as a user would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DEMO_END, DEMO_SEED
from tests.support import REPO_ROOT, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_demo(tmp_path_factory) -> str:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(data_dir)}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "civicpulse.cli",
            "demo",
            "--size",
            "small",
            "--seed",
            str(DEMO_SEED),
            "--end",
            DEMO_END.isoformat(),
            "--no-serve",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "leader" in built.stdout  # the logins are printed
    bind = f"127.0.0.1:{_free_port()}"
    log = open(data_dir / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "civicpulse.cli", "serve", "--bind", bind],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{bind}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"server did not start: {(data_dir / 'server.log').read_text()}")
            time.sleep(0.3)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        unavailable("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
