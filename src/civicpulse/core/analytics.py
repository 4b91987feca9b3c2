"""The lake and the analytics engine as configured for this installation.

Domain apps ask here rather than reading settings themselves, so the engine choice
(``CIVICPULSE_ENGINE``) is made in one place.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from civicpulse.lake import LakeRegistry, connect


def registry() -> LakeRegistry:
    return LakeRegistry(settings.CONFIG.lake_dir)


def connection():
    """One Ibis connection per process and configuration (Spark start-up costs seconds)."""
    cfg = settings.CONFIG
    return _connect(cfg.engine, cfg.data_dir, cfg.spark_master)


@lru_cache(maxsize=4)
def _connect(engine: str, data_dir, spark_master: str):
    return connect(engine, data_dir=data_dir, spark_master=spark_master)
