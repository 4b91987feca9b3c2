"""Staff pages of the one window and the public intake and status pages."""

from django.urls import path  # noqa: F401

app_name = "cases"
urlpatterns: list = []
