"""The CKAN Action API, at both paths clients use: /api/3/action/<name> and /api/action/<name>
(the one ``ckanapi`` calls)."""

from django.urls import path

from civicpulse.catalog.views import ckan

urlpatterns: list = [
    path("<str:name>", ckan.action, name="ckan-action"),
]
