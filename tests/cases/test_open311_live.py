"""Open311 over the wire: the small demo built and served by the CLI (gunicorn, two workers, as a
city would run it), read by a third-party GeoReport client from PyPI (``georeport``) and written
to with plain HTTP posts, since that client only reads.

``georeport`` sets no timeout on its HTTP calls, so each call runs in a thread with a deadline.
"""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Timeout
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
import requests
from georeport import GeoReport

from tests.conftest import DEMO_END, DEMO_SEED
from tests.support import DemoSite

CITY_CODE = "239900"  # the demo city's division code (civicpulse.demo.generator.CITY_CODE)
KEY, RATE_KEY = "live-open311-key", "live-open311-rate"
INSIDE = {"lat": "45.75", "long": "126.6"}  # a point in the demo city
WINDOW = {
    "start_date": f"{DEMO_END - timedelta(days=30)}T00:00:00+08:00",
    "end_date": f"{DEMO_END}T23:59:59+08:00",
}


class Live(DemoSite):
    @property
    def api(self) -> str:
        return f"{self.url}/open311/v2"


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Live:
    """The served demo, with two API keys added through the CLI to the store it reads."""
    site = Live(tmp_path_factory.mktemp("open311-live"), seed=DEMO_SEED, end=DEMO_END.isoformat())
    site.build()
    for key, name in ((KEY, "live test"), (RATE_KEY, "live rate test")):
        made = site.cli(
            "manage",
            "shell",
            "-c",
            "from civicpulse.cases.models import ApiKey; "
            f"ApiKey.objects.get_or_create(key={key!r}, defaults={{'name': {name!r}}})",
        )
        assert made.returncode == 0, made.stderr[-2000:]
    site.serve()
    yield site
    site.stop()


def within(seconds: float, call, *args, **kwargs):
    """``call(*args, **kwargs)``, failing the test if it takes longer than ``seconds``."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call, *args, **kwargs).result(timeout=seconds)
    except Timeout:
        pytest.fail(f"{getattr(call, '__name__', call)} took longer than {seconds} s")
    finally:
        pool.shutdown(wait=False)


def _post(live: Live, fields: dict, fmt: str = "json", **kwargs) -> requests.Response:
    return requests.post(f"{live.api}/requests.{fmt}", data=fields, timeout=20, **kwargs)


def test_a_georeport_client_reads_the_services_and_a_definition(live):
    client = GeoReport(live.api, jurisdiction=CITY_CODE)
    services = within(20, client.get_service_list)
    codes = [s["service_code"] for s in services]
    assert len(codes) == 17 and "heating" in codes
    heating = next(s for s in services if s["service_code"] == "heating")
    assert heating["service_name"] == "供热问题" and heating["type"] == "realtime"
    as_xml = within(
        20, GeoReport(live.api, jurisdiction=CITY_CODE, output_format="xml").get_service_list
    )
    assert [s["service_code"] for s in as_xml] == codes
    assert as_xml[codes.index("heating")]["metadata"] == "false"
    definition = within(20, client.get_service_definition, "heating")
    assert definition == {"service_code": "heating", "attributes": []}
    wrong = GeoReport(live.api, jurisdiction="sfgov.org")
    with pytest.raises(requests.HTTPError) as refused:
        within(20, wrong.get_service_list)
    assert refused.value.response.status_code == 404
    assert refused.value.response.json()[0]["code"] == 404


def test_a_georeport_client_reads_requests_with_filters_and_one_request(live):
    client = GeoReport(live.api, jurisdiction=CITY_CODE)
    found = within(
        30, client.get_service_requests, service_code="heating,noise", status="open", **WINDOW
    )
    assert found and len(found) <= 1000
    start = datetime.fromisoformat(WINDOW["start_date"])
    end = datetime.fromisoformat(WINDOW["end_date"])
    for item in found:
        assert item["service_code"] in ("heating", "noise") and item["status"] == "open"
        assert start <= datetime.fromisoformat(item["requested_datetime"]) <= end
    one = within(20, client.get_service_request, found[0]["service_request_id"])
    assert one == found[0]
    xml_client = GeoReport(live.api, jurisdiction=CITY_CODE, output_format="xml")
    as_xml = within(30, xml_client.get_service_requests, service_code="noise", **WINDOW)
    assert {r["service_code"] for r in as_xml} == {"noise"}
    ids = ",".join(r["service_request_id"] for r in found[:3])
    assert [r["service_request_id"] for r in within(20, client.get_service_requests, ids)] == [
        r["service_request_id"] for r in found[:3]
    ]


def test_posts_over_the_wire_are_stored_audited_and_read_back_without_personal_data(live):
    personal = {"email": "wang.wu.live@example.cn", "phone": "13711112222", "first_name": "王五"}
    fields = {
        "api_key": KEY,
        "jurisdiction_id": CITY_CODE,
        "service_code": "heating",
        **INSIDE,
        **personal,
        "description": '暖气片不热 <script>alert("x")</script>',
        "media_url": "https://photos.example.cn/radiator.jpg",
    }
    response = _post(live, fields)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    (made,) = response.json()
    assert made["account_id"] is None and made["service_notice"]
    client = GeoReport(live.api)
    one = within(20, client.get_service_request, made["service_request_id"])
    assert one["description"] == fields["description"] and one["status"] == "open"
    assert one["media_url"] == fields["media_url"]
    for fmt in ("json", "xml"):
        raw = requests.get(
            f"{live.api}/requests/{made['service_request_id']}.{fmt}", timeout=20
        ).text
        assert "<script" not in raw
        assert not [v for v in personal.values() if v in raw]
    by_xml = _post(live, {**fields, "description": "XML 回执"}, fmt="xml")
    assert by_xml.status_code == 200
    assert by_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert ET.fromstring(by_xml.content).findtext("request/service_request_id")

    # failures keep the spec's form through a real server too
    refused = _post(live, {**fields, "api_key": "nope"})
    assert refused.status_code == 403 and refused.json()[0]["code"] == 403
    too_big = _post(live, {**fields, "description": "x" * 70_000})
    assert too_big.status_code == 413 and too_big.json()[0]["code"] == 413
    not_utf8 = requests.post(
        f"{live.api}/requests.xml",
        data=b"api_key=" + KEY.encode() + b"&service_code=heating&description=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=20,
    )
    assert not_utf8.status_code == 400
    assert ET.fromstring(not_utf8.content).findtext("error/code") == "400"

    verified = live.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout


def test_the_rate_limit_holds_across_server_processes(live):
    if time.time() % 60 > 40:  # start in a fresh minute window, so all 61 fall in one
        time.sleep(61 - time.time() % 60)
    fields = {"api_key": RATE_KEY, "service_code": "noise", **INSIDE}
    made = []
    for i in range(60):
        response = _post(live, {**fields, "description": f"楼上装修噪声 {i}"})
        assert response.status_code == 200, (i, response.text)
        made.append(response.json()[0]["service_request_id"])
    refused = _post(live, {**fields, "description": "第61次"})
    assert refused.status_code == 429 and refused.json()[0]["code"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    stored = requests.get(
        f"{live.api}/requests.json", params={"service_request_id": ",".join(made)}, timeout=20
    ).json()
    assert sorted(r["service_request_id"] for r in stored) == sorted(made)
    log = (live.data_dir / "server.log").read_text()
    assert '" 500 ' not in log and "Traceback" not in log, log[-3000:]


def test_discovery_over_the_wire(live):
    body = json.loads(urllib.request.urlopen(f"{live.api}/discovery.json", timeout=20).read())
    assert body["endpoints"][0]["url"] == live.api
