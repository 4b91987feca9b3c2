"""Back office of the one window: the service catalog with its questions, the holiday
calendar, API keys; cases are read-mostly here (their steps go through the workflow)."""

from django.contrib import admin

from civicpulse.cases.models import ApiKey, Case, Holiday, ImportBatch, Service, ServiceAttribute


class ServiceAttributeInline(admin.TabularInline):
    model = ServiceAttribute
    extra = 0
    fields = (
        "order",
        "code",
        "datatype",
        "required",
        "variable",
        "description",
        "datatype_description",
        "values",
    )


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name_zh",
        "name_en",
        "group",
        "department",
        "sla_working_days",
        "is_active",
    )
    list_filter = ("group", "department", "is_active")
    search_fields = ("code", "name_zh", "name_en", "keywords")
    inlines = [ServiceAttributeInline]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """No status field is editable here: moving a case is a workflow step with its history."""

    list_display = ("tracking_no", "title", "service", "status", "channel", "created_at")
    list_filter = ("status", "channel", "service")
    search_fields = ("=tracking_no", "title")
    raw_id_fields = ("area", "duplicate_of")
    date_hierarchy = "created_at"
    exclude = ("reporters",)
    readonly_fields = (
        "status",
        "tracking_no",
        "channel",
        "created_at",
        "accepted_at",
        "resolved_at",
        "closed_at",
        "due_at",
        "department",
        "duplicate_of",
        "source",
        "external_id",
    )


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "name", "is_workday")
    list_filter = ("is_workday",)
    date_hierarchy = "date"


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "created_at")
    readonly_fields = ("created_at",)


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "source",
        "file",
        "rows_read",
        "rows_imported",
        "rows_skipped",
        "rows_quarantined",
        "committed",
        "started_at",
    )

    def has_add_permission(self, request):
        return False
