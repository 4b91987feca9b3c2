"""Open311 GeoReport v2 at /open311/v2/: every resource in JSON and XML, checked against the
spec's own field tables and XML examples (read from ../shared/data/specs) and the field types of
its OpenAPI description; filters, the default window, paging; every way a POST can fail; and
that nothing personal ever leaves through a read.

PyYAML is not installed, so the OpenAPI file is read by ``_openapi_definitions`` below, a small
reader for the one block it needs (``definitions``: each model's required fields, property types
and enums)."""

from __future__ import annotations

import itertools
import json
import re
import types
from datetime import UTC, datetime, timedelta
from functools import cache
from urllib.parse import quote, urlencode
from xml.etree import ElementTree as ET

import pytest
from django.utils import timezone

from civicpulse.cases import duplicates, open311, workflow
from civicpulse.cases.models import ApiKey, Case, Reporter, Service, ServiceAttribute
from civicpulse.core.models import Area, AuditEntry
from tests.support import shared_data

pytestmark = pytest.mark.django_db

API = "/open311/v2/"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"


# --------------------------------------------------------------------------- the spec, as data


@cache
def _spec() -> str:
    return shared_data("specs/open311_GeoReport_v2_spec.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    text = _spec()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else len(text)]


def spec_fields(title: str) -> list[str]:
    """The leaf fields of a method's response table, in the spec's order (containers, marked
    with ⇊ or ↴, left out)."""
    section = _section(title)
    table = section[section.index("#### Response") :]
    table = table[: table.index("\n#### ", 5)]
    rows = re.findall(r"^\|\s*`([a-z_]+)`\s*(⇊|↴)?", table, re.MULTILINE)
    return [name for name, container in rows if not container]


def spec_xml_example(title: str) -> ET.Element:
    section = _section(title)
    for block in re.findall(r"~~~~\n(.*?)~~~~", section, re.DOTALL):
        if "<?xml" in block:
            return ET.fromstring(block[block.index("<?xml") :].strip().encode("utf-8"))
    raise AssertionError(f"no XML example under {title}")


def discovery_example() -> ET.Element:
    text = shared_data("specs/open311_Service_Discovery.md").read_text(encoding="utf-8")
    xml = text[text.index("<?xml") : text.index("</discovery>") + len("</discovery>")]
    return ET.fromstring(xml.encode("utf-8"))


def discovery_fields() -> list[str]:
    text = shared_data("specs/open311_Service_Discovery.md").read_text(encoding="utf-8")
    return re.findall(r"^-\s+\*\*([a-z_.]+)\*\*", text, re.MULTILINE)


@cache
def _openapi_definitions() -> dict[str, dict]:
    """{model: {"required": [...], "properties": {name: {"type", "format", "enum"}}}} from the
    ``definitions`` block of the Swagger 2 YAML (indentation is regular there)."""
    path = shared_data("specs/open311_georeport_v2-1_openapi.yaml")
    models: dict[str, dict] = {}
    inside = False
    model = prop = part = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line == "definitions:":
            inside = True
            continue
        if not inside or not line.strip():
            continue
        if not line.startswith(" "):
            break
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if indent == 2:
            model = models.setdefault(text.rstrip(":"), {"required": [], "properties": {}})
        elif indent == 4:
            part = text.rstrip(":")
        elif indent == 6 and part == "required" and text.startswith("- "):
            model["required"].append(text[2:])
        elif indent == 6 and part == "properties":
            prop = text.rstrip(":")
            model["properties"][prop] = {}
        elif indent == 8 and part == "properties" and ":" in text:
            key, value = (s.strip() for s in text.split(":", 1))
            if key in ("type", "format"):
                model["properties"][prop][key] = value
            if key == "enum":
                model["properties"][prop]["enum"] = []
        elif indent == 10 and part == "properties" and text.startswith("- "):
            model["properties"][prop].setdefault("enum", []).append(text[2:])
    return models


_TYPES = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "array": list,
}


def check_openapi(item: dict, model: str) -> None:
    """``item`` has the model's required fields, no others than its properties, each of the
    declared type (or null), within its enum, dates with a time zone."""
    definition = _openapi_definitions()[model]
    props = definition["properties"]
    assert props, model
    for name in definition["required"]:
        assert item.get(name) is not None, f"{model}.{name} is required"
    assert set(item) <= set(props), f"{model}: fields not in the spec {set(item) - set(props)}"
    for name, value in item.items():
        if value is None:
            continue
        kind = props[name].get("type", "string")
        assert isinstance(value, _TYPES[kind]), f"{model}.{name}={value!r} is not {kind}"
        if kind in ("number", "integer"):
            assert not isinstance(value, bool)
        if "enum" in props[name]:
            assert value in props[name]["enum"], f"{model}.{name}={value!r}"
        if props[name].get("format") == "date-time":
            assert datetime.fromisoformat(value).utcoffset() is not None, value
        if props[name].get("format") == "uri":
            assert re.match(r"https?://", value), value


def shape(element: ET.Element) -> tuple:
    """An element's tag and its children's shapes, each run of same-tag siblings counted once
    (a list of three services and a list of seventeen have the same shape)."""
    children: list[tuple] = []
    for child in element:
        if children and children[-1][0] == child.tag:
            continue
        children.append(shape(child))
    return (element.tag, tuple(children))


# --------------------------------------------------------------------------- helpers


def _xml(response) -> ET.Element:
    assert response["Content-Type"] == XML_TYPE
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def _json(response):
    assert response["Content-Type"] == JSON_TYPE
    return json.loads(response.content.decode("utf-8"))


def _error(response, status: int, fmt: str = "json") -> str:
    """The response is the spec's error list with this status; returns the description."""
    assert response.status_code == status, response.content[:300]
    if fmt == "json":
        body = _json(response)
        assert isinstance(body, list) and len(body) == 1
        assert set(body[0]) == {"code", "description"} and body[0]["code"] == status
        return body[0]["description"]
    root = _xml(response)
    assert shape(root) == (
        "errors",
        (("error", (("code", ()), ("description", ()))),),
    )
    assert root.findtext("error/code") == str(status)
    return root.findtext("error/description")


def _centre(area: Area) -> tuple[float, float]:
    ring = area.polygon["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2


@pytest.fixture
def grid(demo_city) -> Area:
    return Area.objects.filter(level="grid", polygon__isnull=False).order_by("code").first()


@pytest.fixture
def key(demo_city) -> ApiKey:
    return ApiKey.objects.create(key="k-open311-test", name="test app")


@pytest.fixture
def frozen_window(monkeypatch):
    """The rate limit's clock, stopped in the middle of a window."""
    monkeypatch.setattr(
        "civicpulse.core.ratelimit.time", types.SimpleNamespace(time=lambda: 1_800_000_030.0)
    )


def _form(client, fields: dict | list, fmt: str = "json", **extra):
    return client.post(
        f"{API}requests.{fmt}",
        data=urlencode(fields, doseq=True),
        content_type="application/x-www-form-urlencoded; charset=utf-8",
        **extra,
    )


def _valid(key: ApiKey, grid: Area, **fields) -> dict:
    lon, lat = _centre(grid)
    return {
        "api_key": key.key,
        "service_code": "heating",
        "lat": f"{lat:.6f}",
        "long": f"{lon:.6f}",
        "description": "3号楼暖气不热，室内只有14度",
        **fields,
    }


@pytest.fixture
def own_service(demo_city) -> Service:
    """A service of our own, so that its cases are the only ones a filter on it can find."""
    heating = Service.objects.get(code="heating")
    return Service.objects.create(
        code="t311",
        name_zh="测试服务",
        name_en="Test service",
        group="test",
        department=heating.department,
        sla_working_days=3,
    )


_numbers = itertools.count(1)


def _cases(service: Service, grid: Area, moments: list[datetime], status: str = "new") -> list:
    """Cases put straight into the store, at the given times (bulk, as the demo does)."""
    return Case.objects.bulk_create(
        [
            Case(
                tracking_no=f"T311{next(_numbers):07d}{status[:2]}",
                channel="web",
                service=service,
                department=service.department,
                area=grid,
                title="测试",
                description=f"测试工单 {i}",
                status=status,
                created_at=moment,
            )
            for i, moment in enumerate(moments)
        ]
    )


# --------------------------------------------------------------------------- discovery


@pytest.mark.shared_data
def test_discovery_in_both_formats_follows_the_spec(client, demo_city):
    body = _json(client.get(f"{API}discovery.json"))
    wanted = discovery_fields()
    assert [f for f in wanted if "." not in f] == list(body)
    (endpoint,) = body["endpoints"]
    assert list(endpoint) == [f.split(".")[-1] for f in wanted if f.count(".") == 2]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", body["changeset"])

    root = _xml(client.get(f"{API}discovery.xml"))
    assert shape(root) == shape(discovery_example())
    assert client.get(API).status_code == 200  # the root serves the discovery file too


# --------------------------------------------------------------------------- services


@pytest.mark.shared_data
def test_service_list_json_has_the_specs_fields_and_types(client, demo_city):
    active = list(Service.objects.filter(is_active=True).order_by("code"))
    assert len(active) >= 17
    body = _json(client.get(f"{API}services.json"))
    assert [s["service_code"] for s in body] == [s.code for s in active]
    fields = spec_fields("GET Service List")
    assert fields == [
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    ]
    for item in body:
        assert list(item) == fields
        check_openapi(item, "Service")
    assert body[0]["service_name"] == active[0].name_zh  # Chinese by default


@pytest.mark.shared_data
def test_service_list_xml_has_the_shape_of_the_specs_example(client, demo_city):
    root = _xml(client.get(f"{API}services.xml"))
    assert shape(root) == shape(spec_xml_example("GET Service List"))
    assert len(root.findall("service")) == Service.objects.filter(is_active=True).count()


def test_only_active_services_are_listed_or_defined(client, demo_city):
    Service.objects.filter(code="wage").update(is_active=False)
    codes = [s["service_code"] for s in _json(client.get(f"{API}services.json"))]
    assert "wage" not in codes and "heating" in codes
    _error(client.get(f"{API}services/wage.json"), 404)


def test_service_names_follow_the_requested_language(client, demo_city):
    heating = Service.objects.get(code="heating")

    def name(path, **headers):
        body = _json(client.get(f"{API}{path}", **headers))
        return next(s["service_name"] for s in body if s["service_code"] == "heating")

    assert name("services.json") == heating.name_zh
    assert name("services.json?locale=en") == heating.name_en
    assert name("services.json", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9") == heating.name_en
    assert name("services.json?locale=zh_CN", HTTP_ACCEPT_LANGUAGE="en") == heating.name_zh
    assert name("services.json?locale=xx") == heating.name_zh  # unknown: the default
    root = _xml(client.get(f"{API}services.xml?locale=en"))
    assert heating.name_en in [e.text for e in root.iter("service_name")]


@pytest.fixture
def questions(demo_city) -> Service:
    heating = Service.objects.get(code="heating")
    ServiceAttribute.objects.create(
        service=heating,
        code="ROOMTEMP",
        datatype="singlevaluelist",
        required=True,
        order=1,
        description="室内温度大约多少？",
        values=[{"key": "lt16", "name": "低于16度"}, {"key": "16to18", "name": "16–18度"}],
    )
    ServiceAttribute.objects.create(
        service=heating,
        code="FLOOR",
        datatype="number",
        required=False,
        order=2,
        description="楼层",
        datatype_description="1-40",
    )
    ServiceAttribute.objects.create(
        service=heating,
        code="ROOMS",
        datatype="multivaluelist",
        order=3,
        description="哪些房间？",
        values=[{"key": "bed", "name": "卧室"}, {"key": "living", "name": "客厅"}],
    )
    return heating


@pytest.mark.shared_data
def test_service_definition_in_both_formats_follows_the_spec(client, questions):
    listed = _json(client.get(f"{API}services.json"))
    assert next(s for s in listed if s["service_code"] == "heating")["metadata"] is True
    assert next(s for s in listed if s["service_code"] == "noise")["metadata"] is False

    body = _json(client.get(f"{API}services/heating.json"))
    check_openapi(body, "ServiceDefinition")
    fields = spec_fields("GET Service Definition")
    assert fields[0] == "service_code" and fields[-2:] == ["key", "name"]
    attribute_fields = [*fields[1:-2], "values"]  # values: a container in the spec's table
    assert [a["code"] for a in body["attributes"]] == ["ROOMTEMP", "FLOOR", "ROOMS"]
    for position, attribute in enumerate(body["attributes"], start=1):
        assert list(attribute) == attribute_fields
        check_openapi(attribute, "ServiceAttribute")
        assert attribute["order"] == position
        for value in attribute["values"]:
            check_openapi(value, "AttributeValue")
    first = body["attributes"][0]
    assert first["required"] is True and first["variable"] is True
    assert first["values"] == [
        {"key": "lt16", "name": "低于16度"},
        {"key": "16to18", "name": "16–18度"},
    ]
    assert body["attributes"][1]["datatype_description"] == "1-40"

    root = _xml(client.get(f"{API}services/heating.xml"))
    assert shape(root) == shape(spec_xml_example("GET Service Definition"))
    assert [e.text for e in root.iter("key")] == ["lt16", "16to18", "bed", "living"]


def test_an_unknown_service_is_the_specs_404_in_both_formats(client, demo_city):
    assert "nope" in _error(client.get(f"{API}services/nope.json"), 404)
    assert "nope" in _error(client.get(f"{API}services/nope.xml"), 404, "xml")


def test_an_unknown_resource_or_method_is_an_error_in_the_specs_form(client, demo_city):
    _error(client.get(f"{API}nothing.json"), 404)
    _error(client.get(f"{API}requests.csv"), 404, "xml")
    _error(client.post(f"{API}services.json"), 405)
    response = client.delete(f"{API}requests.xml")
    _error(response, 405, "xml")
    assert "POST" in response["Allow"]


def test_jurisdiction_id_must_be_the_citys_code(client, demo_city):
    city = Area.objects.get(level="city")
    assert client.get(f"{API}services.json?jurisdiction_id={city.code}").status_code == 200
    assert client.get(f"{API}services.json?jurisdiction_id=").status_code == 200  # = absent
    assert "sfgov.org" in _error(client.get(f"{API}services.json?jurisdiction_id=sfgov.org"), 404)
    _error(client.get(f"{API}requests.xml?jurisdiction_id=sfgov.org"), 404, "xml")


# --------------------------------------------------------------------------- reading requests


@pytest.mark.shared_data
def test_requests_json_has_the_specs_fields_and_types(client, demo_city):
    body = _json(
        client.get(
            f"{API}requests.json?start_date=2026-09-01T00:00:00%2B08:00"
            "&end_date=2026-11-26T23:59:59%2B08:00&page_size=300"
        )
    )
    assert len(body) == 300
    fields = spec_fields("GET Service Requests")
    assert fields == spec_fields("GET Service Request")
    for item in body:
        assert list(item) == fields
        check_openapi(item, "Request")
        assert item["agency_responsible"] and item["address"] and item["address_id"]


@pytest.mark.shared_data
def test_requests_xml_has_the_shape_of_the_specs_example(client, demo_city):
    query = "start_date=2026-11-01T00:00:00Z&end_date=2026-11-26T23:59:59Z&page_size=50"
    root = _xml(client.get(f"{API}requests.xml?{query}"))
    assert shape(root) == shape(spec_xml_example("GET Service Requests"))
    assert len(root.findall("request")) == 50
    as_json = _json(client.get(f"{API}requests.json?{query}"))
    assert [r.findtext("service_request_id") for r in root] == [
        r["service_request_id"] for r in as_json
    ]


def test_status_maps_our_six_statuses_to_open_and_closed(client, own_service, grid):
    now = timezone.now()
    for status in ("new", "accepted", "dispatched", "in_progress", "resolved", "closed"):
        _cases(own_service, grid, [now - timedelta(days=1)], status=status)
    body = _json(client.get(f"{API}requests.json?service_code=t311"))
    by_id = {r["service_request_id"][-2:]: r["status"] for r in body}
    assert by_id == {
        "ne": "open",
        "ac": "open",
        "di": "open",
        "in": "open",
        "re": "closed",
        "cl": "closed",
    }
    opened = _json(client.get(f"{API}requests.json?service_code=t311&status=open"))
    closed = _json(client.get(f"{API}requests.json?service_code=t311&status=closed"))
    assert len(opened) == 4 and {r["status"] for r in opened} == {"open"}
    assert len(closed) == 2 and {r["status"] for r in closed} == {"closed"}
    both = _json(client.get(f"{API}requests.json?service_code=t311&status=open,closed"))
    assert len(both) == 6
    declared_twice = f"{API}requests.json?service_code=t311&status=open&status=closed"
    assert len(_json(client.get(declared_twice))) == 6
    _error(client.get(f"{API}requests.json?status=pending"), 400)


def test_the_default_window_is_90_days_and_1000_requests(client, own_service, grid):
    now = timezone.now()
    _cases(own_service, grid, [now - timedelta(days=100)], status="closed")
    recent = [now - timedelta(days=89, minutes=i) for i in range(1001)]
    _cases(own_service, grid, recent)
    first = _json(client.get(f"{API}requests.json?service_code=t311"))
    assert len(first) == 1000  # no dates, no ids: the spec's default cap
    assert all(r["status"] == "open" for r in first)  # the 100-day-old closed one is out
    later = _json(client.get(f"{API}requests.json?service_code=t311&page=2"))
    assert len(later) == 1
    oldest = datetime.fromisoformat(later[0]["requested_datetime"])
    assert now - oldest < timedelta(days=90)
    # across the whole city too, nothing older than 90 days comes by default
    city = _json(client.get(f"{API}requests.json"))
    assert len(city) <= 1000
    assert all(
        now - datetime.fromisoformat(r["requested_datetime"]) <= timedelta(days=90) for r in city
    )
    # dates given: the window is theirs
    start = quote((now - timedelta(days=120)).isoformat())
    dated = _json(
        client.get(f"{API}requests.json?service_code=t311&start_date={start}&status=closed")
    )
    assert len(dated) == 1


def test_date_filters_and_their_format(client, own_service, grid):
    base = timezone.now() - timedelta(days=30)
    _cases(own_service, grid, [base + timedelta(days=d) for d in range(10)])

    def count(query: str) -> int:
        return len(_json(client.get(f"{API}requests.json?service_code=t311&{query}")))

    start = (base + timedelta(days=2, hours=-1)).astimezone(timezone.get_current_timezone())
    end = (base + timedelta(days=5, hours=1)).astimezone(timezone.get_current_timezone())
    assert count(f"start_date={quote(start.isoformat())}&end_date={quote(end.isoformat())}") == 4
    utc = end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert count(f"start_date={quote(start.isoformat())}&end_date={utc}") == 4
    # an unencoded "+08:00" arrives as " 08:00"; it is understood
    assert count(f"end_date={end.isoformat()}") == 6  # from 90 days before it
    assert count(f"start_date={quote(start.isoformat())}") == 8  # up to now
    for bad in ("2026-11-01", "2026-11-01T00:00:00", "yesterday", "2026-13-01T00:00:00Z"):
        assert "ISO 8601" in _error(client.get(f"{API}requests.json?start_date={bad}"), 400)
    _error(client.get(f"{API}requests.xml?end_date=2026-11-01"), 400, "xml")
    later, earlier = quote(end.isoformat()), quote(start.isoformat())
    assert "after" in _error(
        client.get(f"{API}requests.json?start_date={later}&end_date={earlier}"), 400
    )


def test_service_code_and_request_id_filters_take_comma_lists(client, own_service, grid):
    now = timezone.now()
    mine = _cases(own_service, grid, [now - timedelta(hours=h) for h in range(1, 4)])
    old = _cases(own_service, grid, [now - timedelta(days=400)], status="resolved")
    codes = _json(client.get(f"{API}requests.json?service_code=t311,heating&page_size=1000"))
    assert {r["service_code"] for r in codes} <= {"t311", "heating"}
    assert {c.tracking_no for c in mine} <= {r["service_request_id"] for r in codes}
    twice = _json(client.get(f"{API}requests.json?service_code=t311&service_code=heating"))
    assert {r["service_request_id"] for r in twice} == {r["service_request_id"] for r in codes}
    ids = ",".join([mine[0].tracking_no, old[0].tracking_no, "NO-SUCH-ID"])
    # ids override every other argument, the default window included
    found = _json(
        client.get(f"{API}requests.json?service_request_id={ids}&status=open&service_code=noise")
    )
    assert [r["service_request_id"] for r in found] == [mine[0].tracking_no, old[0].tracking_no]
    root = _xml(client.get(f"{API}requests.xml?service_request_id={ids}"))
    assert len(root.findall("request")) == 2
    too_many = ",".join(f"X{i}" for i in range(1001))
    _error(client.get(f"{API}requests.json?service_request_id={too_many}"), 400)


def test_pages_are_ordered_and_do_not_overlap(client, own_service, grid):
    now = timezone.now()
    _cases(own_service, grid, [now - timedelta(hours=h) for h in range(1, 8)])
    pages = [
        _json(client.get(f"{API}requests.json?service_code=t311&page_size=3&page={p}"))
        for p in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    ids = [r["service_request_id"] for p in pages for r in p]
    assert len(set(ids)) == 7
    times = [r["requested_datetime"] for p in pages for r in p]
    assert times == sorted(times, reverse=True)  # newest first
    for bad in ("0", "-1", "abc", "1.5", "1001", "１"):
        _error(client.get(f"{API}requests.json?page_size={bad}"), 400)
    _error(client.get(f"{API}requests.json?page=0"), 400)
    _error(client.get(f"{API}requests.xml?page=x"), 400, "xml")


def test_one_request_in_both_formats_and_an_unknown_one(client, key, grid):
    made = _json(_form(client, _valid(key, grid)))[0]["service_request_id"]
    (one,) = _json(client.get(f"{API}requests/{made}.json"))
    assert one["service_request_id"] == made and one["status"] == "open"
    assert one["service_code"] == "heating" and one["description"] == "3号楼暖气不热，室内只有14度"
    assert one["address_id"] == grid.code
    root = _xml(client.get(f"{API}requests/{made}.xml"))
    assert root.findtext("request/service_request_id") == made
    assert root.findtext("request/agency_responsible") == one["agency_responsible"]
    assert "NOPE" in _error(client.get(f"{API}requests/NOPE.json"), 404)
    _error(client.get(f"{API}requests/NOPE.xml"), 404, "xml")


def test_a_merged_duplicate_is_closed_and_names_the_case_it_joined(client, grid):
    heating = Service.objects.get(code="heating")
    lon, lat = _centre(grid)

    def new(text):
        intake = workflow.Intake(
            channel="hotline", description=text, service=heating, lon=lon, lat=lat
        )
        return workflow.take_in(intake, "operator")

    first, second = new("3号楼暖气不热"), new("3号楼的暖气不热")
    duplicates.merge(second, first, "operator")
    (item,) = _json(client.get(f"{API}requests/{second.tracking_no}.json"))
    assert item["status"] == "closed" and first.tracking_no in item["status_notes"]
    (en,) = _json(client.get(f"{API}requests/{second.tracking_no}.json?locale=en"))
    assert en["status_notes"] == f"Duplicate request, merged into {first.tracking_no}."
    ids = f"{first.tracking_no},{second.tracking_no}"
    opened = _json(
        client.get(f"{API}requests.json?service_code=heating&status=open&page_size=1000")
    )
    assert second.tracking_no not in {r["service_request_id"] for r in opened}
    both = {
        r["service_request_id"]: r["status"]
        for r in _json(client.get(f"{API}requests.json?service_request_id={ids}"))
    }
    assert both == {first.tracking_no: "open", second.tracking_no: "closed"}


# --------------------------------------------------------------------------- creating requests


@pytest.mark.shared_data
def test_a_post_creates_a_case_through_the_one_window(client, key, grid):
    before = AuditEntry.objects.count()
    fields = _valid(
        key,
        grid,
        email="zhang.san@example.cn",
        phone="13912345678",
        first_name="三",
        last_name="张",
        device_id="device-42",
        account_id="acct-7",
        media_url="https://photos.example.cn/a.jpg",
    )
    response = _form(client, fields)
    assert response.status_code == 200
    (created,) = _json(response)
    assert list(created) == ["service_request_id", "service_notice", "account_id"]
    check_openapi(created, "RequestResponse")
    assert created["account_id"] is None
    case = Case.objects.get(tracking_no=created["service_request_id"])
    assert case.channel == "open311" and case.service.code == "heating" and case.area == grid
    assert case.media_url == "https://photos.example.cn/a.jpg"
    reporter = case.reporters.get()
    assert (reporter.name, reporter.phone, reporter.email, reporter.device_id) == (
        "三 张",
        "13912345678",
        "zhang.san@example.cn",
        "device-42",
    )
    entry = AuditEntry.objects.get(action="case.created", object_id=str(case.pk))
    assert entry.actor == "open311:test app" and AuditEntry.objects.count() > before
    assert case.department.name_zh in created["service_notice"]

    root = _xml(_form(client, _valid(key, grid), fmt="xml"))
    assert shape(root) == shape(spec_xml_example("POST Service Request"))
    assert Case.objects.filter(tracking_no=root.findtext("request/service_request_id")).exists()


def test_a_post_may_send_json_and_answer_every_kind_of_question(client, key, grid, questions):
    lon, lat = _centre(grid)
    payload = {
        "api_key": key.key,
        "service_code": "heating",
        "lat": lat,
        "long": lon,
        "description": "暖气不热",
        "attribute": {"ROOMTEMP": "lt16", "FLOOR": 7, "ROOMS": ["bed", "living"]},
    }
    response = client.post(f"{API}requests.json", data=payload, content_type="application/json")
    assert response.status_code == 200, response.content
    case = Case.objects.get(tracking_no=_json(response)[0]["service_request_id"])
    assert case.attributes == {"ROOMTEMP": "lt16", "FLOOR": 7.0, "ROOMS": ["bed", "living"]}
    # the spec's form encoding: attribute[code]=v and attribute[code][]=v1&attribute[code][]=v2
    form = [
        *_valid(key, grid).items(),
        ("attribute[ROOMTEMP]", "16to18"),
        ("attribute[ROOMS][]", "living"),
        ("attribute[ROOMS][]", "bed"),
    ]
    response = _form(client, form)
    assert response.status_code == 200, response.content
    case = Case.objects.get(tracking_no=_json(response)[0]["service_request_id"])
    assert case.attributes == {"ROOMTEMP": "16to18", "ROOMS": ["living", "bed"]}
    # multipart form data, which some clients send, reads the same
    multipart = client.post(
        f"{API}requests.xml", data={**_valid(key, grid), "attribute[ROOMTEMP]": "lt16"}
    )
    assert multipart.status_code == 200, multipart.content
    made = _xml(multipart).findtext("request/service_request_id")
    assert Case.objects.get(tracking_no=made).attributes == {"ROOMTEMP": "lt16"}


def test_other_locations_address_string_and_address_id(client, key, grid):
    city = Area.objects.get(level="city")
    by_text = _form(
        client,
        {
            "api_key": key.key,
            "service_code": "road",
            "address_string": "幸福路与和平街交口",
            "description": "路面塌陷",
        },
    )
    case = Case.objects.get(tracking_no=_json(by_text)[0]["service_request_id"])
    assert case.address == "幸福路与和平街交口" and case.area == city and case.lat is None
    by_id = _form(client, {"api_key": key.key, "service_code": "road", "address_id": grid.code})
    case = Case.objects.get(tracking_no=_json(by_id)[0]["service_request_id"])
    assert case.area == grid
    assert case.description  # none was sent (the spec makes it optional)


def _refused(client, fields, status: int, fmt: str = "json", **extra) -> str:
    before = Case.objects.count()
    if isinstance(fields, bytes):
        response = client.post(f"{API}requests.{fmt}", data=fields, **extra)
    else:
        response = _form(client, fields, fmt=fmt, **extra)
    description = _error(response, status, fmt)
    assert Case.objects.count() == before  # nothing stored
    return description


def test_api_key_is_required_and_must_be_active(client, key, grid):
    assert "api_key" in _refused(client, {**_valid(key, grid), "api_key": ""}, 403)
    assert "Invalid api_key" in _refused(client, {**_valid(key, grid), "api_key": "guess"}, 403)
    _refused(client, {**_valid(key, grid), "api_key": "guess"}, 403, "xml")
    ApiKey.objects.filter(pk=key.pk).update(is_active=False)
    _refused(client, _valid(key, grid), 403)


def test_service_code_must_be_given_and_known(client, key, grid):
    assert "service_code" in _refused(client, {**_valid(key, grid), "service_code": ""}, 400)
    assert "nope" in _refused(client, {**_valid(key, grid), "service_code": "nope"}, 404)
    _refused(client, {**_valid(key, grid), "service_code": "nope"}, 404, "xml")
    assert "jurisdiction_id" in _refused(
        client, {**_valid(key, grid), "jurisdiction_id": "sfgov.org"}, 404
    )
    city = Area.objects.get(level="city")
    assert _form(client, {**_valid(key, grid), "jurisdiction_id": city.code}).status_code == 200


@pytest.mark.parametrize(
    "lat, lon",
    [
        ("abc", "126.6"),
        ("NaN", "126.6"),
        ("45.7", "nan"),
        ("inf", "126.6"),
        ("-Infinity", "126.6"),
        ("91", "126.6"),
        ("45.7", "181"),
        ("45.7", ""),
        ("", "126.6"),
        ("0", "0"),  # a real place, but not in this city
        ("1e400", "126.6"),
    ],
)
def test_bad_coordinates_are_refused(client, key, grid, lat, lon):
    description = _refused(client, {**_valid(key, grid), "lat": lat, "long": lon}, 400)
    assert "lat" in description or "long" in description


def test_bad_coordinates_in_json_are_refused(client, key, grid):
    body = json.dumps({**_valid(key, grid), "lat": float("nan")}).encode()  # "NaN" in JSON
    _refused(client, body, 400, content_type="application/json")


def test_a_location_is_required(client, key, grid):
    fields = {k: v for k, v in _valid(key, grid).items() if k not in ("lat", "long")}
    assert "location" in _refused(client, fields, 400)
    assert "address_id" in _refused(client, {**fields, "address_id": "999999"}, 400)


def test_answers_to_the_services_questions_are_checked(client, key, grid, questions):
    assert "ROOMTEMP" in _refused(client, _valid(key, grid), 400)  # required, missing
    assert "ROOMTEMP" in _refused(client, {**_valid(key, grid), "attribute[ROOMTEMP]": "hot"}, 400)
    assert "FLOOR" in _refused(
        client, {**_valid(key, grid), "attribute[ROOMTEMP]": "lt16", "attribute[FLOOR]": "x"}, 400
    )
    assert "ROOMS" in _refused(
        client,
        [
            *_valid(key, grid).items(),
            ("attribute[ROOMTEMP]", "lt16"),
            ("attribute[ROOMS][]", "attic"),
        ],
        400,
    )
    assert "NOSUCH" in _refused(
        client, {**_valid(key, grid), "attribute[ROOMTEMP]": "lt16", "attribute[NOSUCH]": "1"}, 400
    )
    _refused(client, {**_valid(key, grid), "attribute[ROOMTEMP]": "hot"}, 400, "xml")
    _refused(client, {**_valid(key, grid), "attribute": "lt16"}, 400)


def test_text_fields_are_checked(client, key, grid):
    assert "4,000" in _refused(client, {**_valid(key, grid), "description": "长" * 4001}, 400)
    assert _form(client, {**_valid(key, grid), "description": "长" * 4000}).status_code == 200
    for url in ("javascript:alert(1)", "ftp://example.cn/a.jpg", "not a url", "//x.cn/a"):
        assert "media_url" in _refused(client, {**_valid(key, grid), "media_url": url}, 400)
    assert "email" in _refused(client, {**_valid(key, grid), "email": "not-an-address"}, 400)
    assert "phone" in _refused(client, {**_valid(key, grid), "phone": "<b>1</b>"}, 400)
    assert "control" in _refused(client, {**_valid(key, grid), "description": "a\x00b"}, 400)


def test_hostile_bodies_get_the_specs_errors_never_a_500(client, key, grid):
    too_big = urlencode({**_valid(key, grid), "description": "x" * (64 * 1024)}).encode()
    assert "64 KiB" in _refused(
        client, too_big, 413, content_type="application/x-www-form-urlencoded"
    )
    _refused(client, too_big, 413, "xml", content_type="application/x-www-form-urlencoded")
    assert "JSON" in _refused(client, b'{"api_key": ', 400, content_type="application/json")
    assert "object" in _refused(client, b"[1, 2]", 400, content_type="application/json")
    nested = json.dumps({**_valid(key, grid), "description": {"a": 1}}).encode()
    _refused(client, nested, 400, content_type="application/json")
    raw = urlencode(_valid(key, grid)).encode() + b"&description=\xff\xfe"
    assert "UTF-8" in _refused(client, raw, 400, content_type="application/x-www-form-urlencoded")
    escaped = urlencode(_valid(key, grid)).encode() + b"&description=%C3%28"
    _refused(client, escaped, 400, content_type="application/x-www-form-urlencoded")
    many = "&".join(f"f{i}=1" for i in range(500)).encode()
    _refused(client, many, 400, content_type="application/x-www-form-urlencoded")
    surrogate = b'{"api_key": "k", "description": "\\ud800"}'
    _refused(client, surrogate, 400, content_type="application/json")


def test_an_unexpected_failure_is_logged_and_answered_as_a_general_error(
    client, key, grid, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("the CRM is down")

    monkeypatch.setattr(open311, "take_in", broken)
    description = _refused(client, _valid(key, grid), 400)
    assert "general service error" in description and "CRM" not in description
    assert "the CRM is down" in caplog.text
    _refused(client, _valid(key, grid), 400, "xml")


HOSTILE = '<script>alert("x")</script> & ]]> \' " <!-- --> <![CDATA[ x ]]> \u202e 🙂'


def test_hostile_strings_are_stored_as_text_and_escaped_on_the_way_out(client, key, grid):
    made = _json(
        _form(client, {**_valid(key, grid), "description": HOSTILE, "address_string": HOSTILE})
    )[0]["service_request_id"]
    case = Case.objects.get(tracking_no=made)
    assert case.description == HOSTILE and case.address == HOSTILE  # kept as plain text
    for path, query in ((f"requests/{made}", ""), ("requests", f"?service_request_id={made}")):
        response = client.get(f"{API}{path}.json{query}")
        assert b"<script" not in response.content and b"<!--" not in response.content
        (item,) = _json(response)
        assert item["description"] == HOSTILE and item["address"] == HOSTILE
        response = client.get(f"{API}{path}.xml{query}")
        assert b"<script" not in response.content and b"<![CDATA" not in response.content
        root = _xml(response)
        assert root.findtext("request/description") == HOSTILE
        assert root.findtext("request/address") == HOSTILE


def test_characters_xml_cannot_carry_do_not_break_it(client, own_service, grid):
    (case,) = _cases(own_service, grid, [timezone.now()])
    Case.objects.filter(pk=case.pk).update(description="bell\x07 and form feed\x0c")
    root = _xml(client.get(f"{API}requests/{case.tracking_no}.xml"))  # still well-formed
    assert root.findtext("request/description") == "bell\ufffd and form feed\ufffd"


def test_the_rate_limit_answers_429_and_loses_no_accepted_request(client, key, grid, frozen_window):
    before = Case.objects.filter(channel="open311").count()
    made = []
    for i in range(60):
        response = _form(client, _valid(key, grid, description=f"暖气不热 第{i}次"))
        assert response.status_code == 200, (i, response.content)
        made.append(_json(response)[0]["service_request_id"])
    refused = _form(client, _valid(key, grid, description="第61次"))
    assert "60" in _error(refused, 429)
    assert 1 <= int(refused["Retry-After"]) <= 60
    _error(_form(client, _valid(key, grid), fmt="xml"), 429, "xml")
    assert Case.objects.filter(channel="open311").count() == before + 60  # all 60 kept, no 61st
    assert not Case.objects.filter(description="第61次").exists()
    stored = _json(client.get(f"{API}requests.json?service_request_id={','.join(made)}"))
    assert sorted(r["service_request_id"] for r in stored) == sorted(made)
    # the limit is per key and address: another client is not held up
    other = _form(client, _valid(key, grid), REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


def test_reads_are_public_and_not_audited(client, key, grid):
    made = _json(_form(client, _valid(key, grid)))[0]["service_request_id"]
    before = AuditEntry.objects.count()
    for path in ("services.json", f"requests/{made}.xml", "requests.json", "discovery.json"):
        assert client.get(f"{API}{path}").status_code == 200
    assert AuditEntry.objects.count() == before


# --------------------------------------------------------------------------- nothing personal


def test_no_read_ever_shows_personal_data(client, key, grid, questions):
    personal = {
        "email": "li.si.private@example.cn",
        "phone": "13987654321",
        "first_name": "李四光",
        "last_name": "Secretname",
        "device_id": "IMEI-3548-PRIVATE",
        "account_id": "ACCOUNT-PRIVATE-9",
    }
    fields = {
        **_valid(key, grid),
        **personal,
        "attribute[ROOMTEMP]": "lt16",
        # what people type into free text: their own details, and other numbers
        "description": "暖气不热。请联系我 13987654321 或 li.si.private@example.cn，李四光；"
        "身份证 11010519491231002X，座机 0451-86661234，手机 139 8765 4321",
    }
    posted = _form(client, fields)
    assert not [v for v in personal.values() if v in posted.content.decode()]  # never echoed
    made = _json(posted)[0]["service_request_id"]
    case = Case.objects.get(tracking_no=made)
    Case.objects.filter(pk=case.pk).update(photo="case-photos/2026/11/private-photo.jpg")
    token = case.token
    city = Area.objects.get(level="city")
    secrets = [
        *personal.values(),
        "11010519491231002X",
        "86661234",
        "8765 4321",
        "private-photo",
        "case-photos",
        token,
    ]
    paths = [
        "discovery",
        "services",
        "services/heating",
        "requests",
        f"requests/{made}",
        f"requests?service_request_id={made}",
        "requests?service_code=heating&status=open",
        f"requests?jurisdiction_id={city.code}&page_size=1000",
    ]
    for path in paths:
        for fmt in ("json", "xml"):
            url = f"{API}{path.replace('?', f'.{fmt}?', 1) if '?' in path else f'{path}.{fmt}'}"
            response = client.get(url)
            assert response.status_code == 200, url
            text = response.content.decode("utf-8")
            for secret in secrets:
                assert secret not in text, (url, secret)
    (item,) = _json(client.get(f"{API}requests/{made}.json"))
    assert item["description"].startswith("暖气不热。请联系我 *** 或 ***，***；")
    # the token endpoint gives the id for a token, nothing more
    (found,) = _json(client.get(f"{API}tokens/{token}.json"))
    assert found == {"service_request_id": made, "token": token}
    assert Reporter.objects.filter(email=personal["email"]).exists()  # kept, just never shown


@pytest.mark.shared_data
def test_tokens_in_both_formats(client, key, grid):
    made = _json(_form(client, _valid(key, grid)))[0]["service_request_id"]
    token = Case.objects.get(tracking_no=made).token
    (found,) = _json(client.get(f"{API}tokens/{token}.json"))
    check_openapi(found, "TokenResponse")
    root = _xml(client.get(f"{API}tokens/{token}.xml"))
    assert shape(root) == shape(spec_xml_example("GET service_request_id from a token"))
    assert root.findtext("request/service_request_id") == made
    assert "nope" in _error(client.get(f"{API}tokens/nope.json"), 404)
    _error(client.get(f"{API}tokens/nope.xml"), 404, "xml")


@pytest.mark.shared_data
def test_errors_have_the_shape_of_the_specs_example(client, key, grid):
    response = _form(client, {**_valid(key, grid), "api_key": "wrong"}, fmt="xml")
    assert response.status_code == 403
    example = _section("Errors")
    xml = example[example.index("<?xml") : example.index("</errors>") + len("</errors>")]
    assert shape(_xml(response)) == shape(ET.fromstring(xml.encode()))
    assert spec_fields("Errors") == ["code", "description"]
