from __future__ import annotations

import itertools

import pytest

_numbers = itertools.count(1)


@pytest.fixture
def department(db):
    from civicpulse.core.models import Department

    dept, _ = Department.objects.get_or_create(
        code="CAT-TEST", defaults={"name_zh": "数据局测试处", "name_en": "Data bureau test unit"}
    )
    return dept


@pytest.fixture
def new_dataset(department):
    """A fresh dataset per call (slugs never collide within a run)."""
    from civicpulse.catalog import services

    def make(prefix: str = "ds", **kwargs):
        return services.register_dataset(
            f"{prefix}-{next(_numbers)}",
            title=kwargs.pop("title", "测试数据集"),
            owner=department,
            **kwargs,
        )

    return make


@pytest.fixture(autouse=True)
def english(settings, monkeypatch):
    """The catalog's findings and refusals are checked by their English text, in this process,
    in its pages (the default language of a request without Accept-Language) and in the
    commands the tests start; zh-Hans users read the same messages translated."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    monkeypatch.setenv("CIVICPULSE_LANGUAGE", "en")
    with translation.override("en"):
        yield
