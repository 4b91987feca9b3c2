from django.contrib import admin

from civicpulse.enterprise.models import Enterprise


@admin.register(Enterprise)
class EnterpriseAdmin(admin.ModelAdmin):
    list_display = ("name", "uscc", "industry_code", "status", "founded")
    list_filter = ("status", "industry_code")
    search_fields = ("name", "=uscc")
    raw_id_fields = ("area",)
