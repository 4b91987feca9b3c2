"""Builds the front-end assets from npm into the package when it is built.

`pip install .` from a checkout must give a working cockpit, and the assets may not come from a
CDN or be committed, so building the package runs `npm ci` and the copy script when the vendor
files are not there yet. Everything else is declared in pyproject.toml.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
VENDOR = ROOT / "src" / "civicpulse" / "web" / "static" / "vendor"
ASSETS = ("echarts.min.js", "htmx.min.js")


class BuildWithAssets(build_py):
    def run(self):
        if not all((VENDOR / name).exists() for name in ASSETS):
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit("civicpulse: building needs npm for the front-end assets "
                                 "(apt-get install npm), or run `make assets` first")
            install = "ci" if (ROOT / "package-lock.json").exists() else "install"
            subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=ROOT, check=True)
            subprocess.run([npm, "run", "build"], cwd=ROOT, check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithAssets})
