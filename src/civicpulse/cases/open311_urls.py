"""Open311 GeoReport v2 at /open311/v2/ (see cases/open311.py): every resource as .json or .xml;
anything else under the prefix answers with the spec's 404 error."""

from django.urls import re_path

from civicpulse.cases import open311

app_name = "open311"

_AS = r"\.(?P<fmt>json|xml)$"

urlpatterns = [
    re_path(r"^$", open311.discovery, name="root"),
    re_path(r"^discovery" + _AS, open311.discovery, name="discovery"),
    re_path(r"^services" + _AS, open311.service_list, name="services"),
    re_path(r"^services/(?P<code>[^/]+)" + _AS, open311.service_definition, name="service"),
    re_path(r"^requests" + _AS, open311.service_requests, name="requests"),
    re_path(r"^requests/(?P<request_id>[^/]+)" + _AS, open311.request_detail, name="request"),
    re_path(r"^tokens/(?P<token>[^/]+)" + _AS, open311.token_detail, name="token"),
    re_path(r"^(?P<rest>.*)\.(?P<fmt>json)$", open311.not_found),
    re_path(r"^(?P<rest>.*)$", open311.not_found),
]
