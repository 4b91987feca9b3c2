from django.contrib import admin

from civicpulse.cases.models import Case, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "group", "department", "sla_working_days")
    list_filter = ("group", "department")


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("tracking_no", "title", "service", "status", "channel", "created_at")
    list_filter = ("status", "channel", "service")
    search_fields = ("tracking_no", "title")
    raw_id_fields = ("area",)
    date_hierarchy = "created_at"
