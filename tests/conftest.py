"""Suite-wide fixtures: an isolated data dir, and a small demo city built once per session."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import date
from pathlib import Path

import pytest

DEMO_END = date(2026, 11, 26)
DEMO_SEED = 7


def pytest_configure(config):
    """Point the lake and everything else the settings locate at a fresh directory, so the
    suite never touches a developer's ./var."""
    if not config.pluginmanager.has_plugin("django"):
        return  # run with -p no:django: the floors below Django need no settings
    from django.conf import settings

    data_dir = Path(tempfile.mkdtemp(prefix="civicpulse-test-"))
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=data_dir)
    settings.STATIC_ROOT = data_dir / "static"
    settings.STATIC_ROOT.mkdir()
    settings.MEDIA_ROOT = data_dir / "media"


@pytest.fixture(scope="session")
def demo_city(django_db_setup, django_db_blocker):
    """The small demo city in the test store (built once; tests must not depend on its absence)."""
    from civicpulse.demo import loader

    with django_db_blocker.unblock():
        loader.build(size="small", seed=DEMO_SEED, end=DEMO_END, quiet=True)
    return loader


@pytest.fixture
def leader(demo_city, db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="leader")
