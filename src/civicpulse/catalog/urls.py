"""The data hub's staff pages: the catalog, standards, sharing (mounted at /catalog/)."""

from django.urls import path

from civicpulse.catalog.views import catalog as catalog_views
from civicpulse.catalog.views import releases as release_views
from civicpulse.catalog.views import sharing as sharing_views

app_name = "catalog"
urlpatterns: list = [
    path("", catalog_views.catalog_list, name="list"),
    path("sharing/request/<slug:slug>/", sharing_views.request_dataset, name="sharing-request"),
    path("sharing/inbox/", sharing_views.inbox, name="sharing-inbox"),
    path("sharing/requests/<int:pk>/approve/", sharing_views.approve, name="sharing-approve"),
    path("sharing/requests/<int:pk>/deny/", sharing_views.deny, name="sharing-deny"),
    path("sharing/grants/", sharing_views.grants, name="sharing-grants"),
    path("sharing/grants/<int:pk>/revoke/", sharing_views.revoke, name="sharing-revoke"),
    path("sharing/datasets/<slug:slug>/rows/", sharing_views.rows, name="sharing-rows"),
    path("sharing/datasets/<slug:slug>/usage/", sharing_views.usage, name="sharing-usage"),
    path("releases/<slug:slug>/", release_views.release_list, name="releases"),
    path("releases/<slug:slug>/new/", release_views.release_new, name="release-new"),
    path("releases/<slug:slug>/<int:pk>/", release_views.release_detail, name="release"),
    path(
        "releases/<slug:slug>/<int:pk>/<str:step>/",
        release_views.release_step,
        name="release-step",
    ),
]

# Kept last, after every other line: one path segment is a dataset's identifier, so any fixed
# page under /catalog/ must be matched before it.
urlpatterns.append(path("<slug:slug>/", catalog_views.catalog_dataset, name="dataset"))
