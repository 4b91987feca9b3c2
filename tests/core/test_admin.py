"""The back office: the Django admin opens for the data bureau, the audit chain is read-only
there, and residents are listed masked."""

from __future__ import annotations

import pytest

from civicpulse.core import accounts
from civicpulse.core.models import Role
from civicpulse.identity.models import Resident

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, demo_city):
    client.force_login(accounts.create_admin("bureau", "pw-123456"))
    return client


def test_admin_opens_for_the_data_bureau(admin_client):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/core/area/?level__exact=district").status_code == 200


def test_audit_entries_cannot_be_added_or_changed_in_admin(admin_client):
    assert admin_client.get("/admin/core/auditentry/").status_code == 200
    assert admin_client.get("/admin/core/auditentry/add/").status_code == 403


def test_residents_are_listed_masked(admin_client):
    resident = Resident.objects.order_by("-id").first()  # the admin lists newest first
    page = admin_client.get("/admin/identity/resident/").content.decode()
    assert resident.id_number not in page
    assert f"{resident.id_number[:6]}********{resident.id_number[-4:]}" in page


def test_other_staff_cannot_open_admin(client, demo_city):
    client.force_login(accounts.create_staff("op", "pw-123456", Role.HOTLINE_OPERATOR))
    assert client.get("/admin/").status_code == 302


def test_service_catalog_with_its_questions_in_admin(admin_client):
    from civicpulse.cases.models import Service

    service = Service.objects.get(code="heating")
    page = admin_client.get(f"/admin/cases/service/{service.pk}/change/")
    assert page.status_code == 200 and "attributes-TOTAL_FORMS" in page.content.decode()
    assert admin_client.get("/admin/cases/holiday/").status_code == 200
    assert admin_client.get("/admin/cases/apikey/add/").status_code == 200


def test_a_resident_record_is_masked_and_its_viewing_audited(admin_client):
    from civicpulse.core.models import AuditEntry

    resident = Resident.objects.order_by("id").first()
    page = admin_client.get(f"/admin/identity/resident/{resident.pk}/change/").content.decode()
    assert resident.id_number not in page and resident.phone not in page
    assert AuditEntry.objects.filter(action="resident.view", object_id=str(resident.pk)).exists()
