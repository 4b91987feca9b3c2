"""The public open-data portal (mounted at /data/): published releases only, nothing personal."""

from django.urls import path, re_path

from civicpulse.catalog.views import portal

app_name = "portal"
urlpatterns: list = [
    path("", portal.index, name="index"),
    path("catalog.jsonld", portal.catalog_jsonld, name="catalog_jsonld"),
    path("<slug:slug>/", portal.dataset_page, name="dataset"),
    path("<slug:slug>/dcat.jsonld", portal.dataset_jsonld, name="dataset_jsonld"),
    re_path(
        r"^(?P<slug>[-a-zA-Z0-9_]+)/(?P<resource_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
        r"[0-9a-f]{4}-[0-9a-f]{12})\.(?P<fmt>csv|parquet)$",
        portal.download,
        name="download",
    ),
]
