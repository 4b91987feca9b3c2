from django.contrib import admin

from civicpulse.identity.models import Resident


@admin.register(Resident)
class ResidentAdmin(admin.ModelAdmin):
    """Lists show identifiers masked; a full record is opened one at a time, on purpose."""

    list_display = ("masked_name", "masked_id_number", "gender", "birth_date", "disability")
    list_filter = ("gender", "disability")
    search_fields = ("=id_number",)  # exact match only: no browsing by fragments of an ID
    raw_id_fields = ("area",)

    @admin.display(description="name")
    def masked_name(self, obj: Resident) -> str:
        return obj.name[:1] + "*" * (len(obj.name) - 1)

    @admin.display(description="resident ID number")
    def masked_id_number(self, obj: Resident) -> str:
        return f"{obj.id_number[:6]}********{obj.id_number[-4:]}"
