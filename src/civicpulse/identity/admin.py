from django.contrib import admin

from civicpulse.core import audit
from civicpulse.identity.checks import mask
from civicpulse.identity.models import Resident


@admin.register(Resident)
class ResidentAdmin(admin.ModelAdmin):
    """Residents are shown masked, list and record alike, and every opened record is audited;
    master data changes through the identity services, not by hand here."""

    list_display = ("masked_name", "masked_id_number", "gender", "birth_date")
    list_filter = ("gender",)
    search_fields = ("=id_number",)  # exact match only: no browsing by fragments of an ID
    fields = ("masked_name", "masked_id_number", "gender", "birth_date", "masked_phone", "area")
    readonly_fields = fields

    @admin.display(description="name")
    def masked_name(self, obj: Resident) -> str:
        return mask("name", obj.name)

    @admin.display(description="resident ID number")
    def masked_id_number(self, obj: Resident) -> str:
        return mask("resident_id", obj.id_number)

    @admin.display(description="mobile")
    def masked_phone(self, obj: Resident) -> str:
        return mask("mobile", obj.phone)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        audit.record(
            request.user,
            "resident.view",
            object_type="identity.resident",
            object_id=str(object_id)[:64],
        )
        return super().change_view(request, object_id, form_url, extra_context)
