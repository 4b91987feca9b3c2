"""Datasets and their versions, read-only: they change through the catalog's services (which
load, audit and keep versions immutable), never by hand here."""

from django.contrib import admin

from civicpulse.catalog.models import Dataset, DatasetVersion


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(_ReadOnly):
    list_display = ("slug", "title", "owner", "update_frequency", "grade", "share_type")
    list_filter = ("owner", "update_frequency", "grade", "share_type")
    search_fields = ("slug", "title", "title_en")


@admin.register(DatasetVersion)
class DatasetVersionAdmin(_ReadOnly):
    # Column profiles (min/max/sample values) are left out: they may hold personal data until
    # the classification step tags and masks such columns.
    list_display = ("dataset", "number", "status", "source_kind", "row_count", "created_at")
    list_filter = ("status", "source_kind")
    search_fields = ("dataset__slug",)
    exclude = ("source_options",)
