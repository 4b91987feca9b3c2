"""The CKAN Action API, at both paths clients use: /api/3/action/<name> and /api/action/<name>
(the one ``ckanapi`` calls)."""


urlpatterns: list = [
]
