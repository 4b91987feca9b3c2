"""The one window's pages: staff queue and case detail within scope, the desks, the public
report form with its photo checks and limit, and the resident's status page with rating."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from civicpulse.cases import workflow
from civicpulse.cases.models import Case, Service
from civicpulse.cases.services import Intake
from civicpulse.core import accounts
from civicpulse.core.models import Area, AuditEntry, Department, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(demo_city):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="operator")


@pytest.fixture
def case(demo_city):
    service = Service.objects.get(code="streetlight")
    grid = Area.objects.filter(level="grid").order_by("code")[3]
    return workflow.take_in(
        Intake(
            channel="hotline",
            description="小区门口路灯不亮已经三天",
            service=service,
            area=grid,
            reporter={"name": "李四", "phone": "13912345678"},
        ),
        "operator",
    )


def _png(size=(32, 32)) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "lamp.png"
    return buffer


def test_queue_is_scoped_to_the_department(client, case):
    mine = case.department
    other = Department.objects.exclude(pk=mine.pk).first()
    insider = accounts.create_staff("in", "pw-123456", Role.DEPARTMENT_STAFF, department=mine)
    outsider = accounts.create_staff("out", "pw-123456", Role.DEPARTMENT_STAFF, department=other)
    link = f'href="/cases/{case.tracking_no}/"'
    client.force_login(insider)
    assert link in client.get("/cases/", {"q": case.tracking_no}).content.decode()
    client.force_login(outsider)
    assert link not in client.get("/cases/", {"q": case.tracking_no}).content.decode()
    assert client.get(f"/cases/{case.tracking_no}/").status_code == 404


def test_bulk_action_from_the_queue(client, operator, case):
    client.force_login(operator)
    response = client.post("/cases/?q=" + case.tracking_no, {"action": "accept", "case": [case.pk]})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "accepted"


def test_detail_masks_the_reporter_and_is_audited(client, operator, case):
    client.force_login(operator)
    page = client.get(f"/cases/{case.tracking_no}/").content.decode()
    assert "13912345678" not in page and "139****5678" in page
    assert "李四" not in page and "李*" in page
    assert AuditEntry.objects.filter(action="case.view", object_id=str(case.pk)).exists()


def test_steps_and_transfer_from_the_detail_page(client, operator, case):
    client.force_login(operator)
    url = f"/cases/{case.tracking_no}/"
    client.post(url, {"kind": "step", "action": "accept"})
    other = Department.objects.exclude(pk=case.department_id).first()
    client.post(url, {"kind": "transfer", "department": other.pk, "reason": "职责调整"})
    case.refresh_from_db()
    assert case.status == "dispatched" and case.department == other
    response = client.post(url, {"kind": "step", "action": "close"}, follow=True)
    assert "cannot be closeed" in response.content.decode() or "cannot" in response.content.decode()


def test_desk_records_a_hotline_call(client, operator, demo_city):
    client.force_login(operator)
    service = Service.objects.get(code="noise")
    response = client.post(
        "/cases/new/",
        {"service": service.pk, "description": "楼下商铺夜间噪音", "lat": "45.80", "lon": "126.60"},
    )
    assert response.status_code == 302
    case = Case.objects.get(description="楼下商铺夜间噪音")
    assert case.channel == "hotline" and case.area.level == "grid"


def test_desk_and_grid_pages_need_their_roles(client, demo_city):
    client.force_login(accounts.create_staff("ana", "pw-123456", Role.ANALYST))
    assert client.get("/cases/new/").status_code == 403
    assert client.get("/grid/report/").status_code == 403
    client.logout()
    assert client.get("/cases/").status_code == 302  # to the login page


def test_public_report_with_photo_then_status_and_rating(client, demo_city):
    service = Service.objects.get(code="road")
    response = client.post(
        "/report/",
        {
            "service": service.pk,
            "description": "人行道塌陷一个大坑",
            "phone": "13700000000",
            "photo": _png(),
        },
    )
    assert response.status_code == 200
    case = Case.objects.get(description="人行道塌陷一个大坑")
    assert case.channel == "web" and case.photo.name.endswith(".png")
    assert client.get(f"/cases/{case.tracking_no}/photo/").status_code == 302  # staff only
    client.force_login(get_user_model().objects.get(username="operator"))
    shown = client.get(f"/cases/{case.tracking_no}/photo/")
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    client.logout()
    track = f"/track/{case.token}/"
    assert track in response.content.decode()
    page = client.get(track).content.decode()
    assert case.tracking_no in page and "13700000000" not in page
    workflow.step(workflow.step(case, "accept", "s"), "resolve", "s")
    client.post(track, {"rating": "2", "comment": "还是有坑"})
    case.refresh_from_db()
    assert case.satisfaction == 2 and case.status == "in_progress"  # low rating reopened it
    assert client.get("/track/not-a-real-token/").status_code == 404


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (io.BytesIO(b"<?php system($_GET['x']); ?>"), "not a readable image"),
        (io.BytesIO(b"GIF89a" + b"\x00" * 100), "not a readable image"),
    ],
)
def test_bad_photos_are_refused_and_nothing_is_stored(client, demo_city, upload, message):
    upload.name = "evil.png"
    before = Case.objects.count()
    service = Service.objects.get(code="road")
    response = client.post(
        "/report/",
        {"service": service.pk, "description": "坑", "photo": upload},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert message in response.content.decode()
    assert Case.objects.count() == before


def test_oversized_photo_is_refused(client, demo_city, settings):
    big = io.BytesIO(b"\xff" * (5 * 1024 * 1024 + 10))
    big.name = "big.jpg"
    service = Service.objects.get(code="road")
    response = client.post(
        "/report/",
        {"service": service.pk, "description": "坑", "photo": big},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "larger than 5 MB" in response.content.decode()


def test_public_reports_are_rate_limited(client, demo_city):
    service = Service.objects.get(code="road")
    codes = [
        client.post("/report/", {"service": service.pk, "description": f"坑{i}"}).status_code
        for i in range(22)
    ]
    assert codes[:20] == [200] * 20 and codes[-1] == 429
    assert Case.objects.filter(description__startswith="坑").count() == 20


def test_sla_board_and_triage_render(client, operator, case):
    client.force_login(operator)
    board = client.get("/cases/sla/")
    assert board.status_code == 200 and case.department.name in board.content.decode()
    Case.objects.filter(pk=case.pk).update(needs_triage=True)
    assert case.tracking_no in client.get("/cases/triage/").content.decode()


def test_roles_that_look_cannot_act(client, case):
    client.force_login(accounts.create_staff("look", "pw-123456", Role.ANALYST))
    url = f"/cases/{case.tracking_no}/"
    assert client.get(url).status_code == 200  # an analyst may read the case...
    assert client.post(url, {"kind": "step", "action": "accept"}).status_code == 403
    assert client.post("/cases/", {"action": "accept", "case": [case.pk]}).status_code == 403
    case.refresh_from_db()
    assert case.status == "new"  # ...but not move it


def test_department_staff_without_department_or_area_see_nothing(client, case):
    client.force_login(accounts.create_staff("nobody", "pw-123456", Role.DEPARTMENT_STAFF))
    assert client.get(f"/cases/{case.tracking_no}/").status_code == 404
    assert f'href="/cases/{case.tracking_no}/"' not in client.get("/cases/").content.decode()


def test_a_decompression_bomb_is_refused_not_a_crash(client, demo_city):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # 10^10 pixels claimed
    bomb = io.BytesIO(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    bomb.name = "bomb.png"
    service = Service.objects.get(code="road")
    response = client.post(
        "/report/",
        {"service": service.pk, "description": "坑", "photo": bomb},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and "not a readable image" in response.content.decode()


def test_masked_phone_keeps_only_the_last_four_of_short_numbers():
    from civicpulse.cases.views import mask_phone

    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("84561234") == "****1234"
