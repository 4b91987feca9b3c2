"""The data hub's staff pages: the catalog, standards, sharing (mounted at /catalog/)."""


app_name = "catalog"
urlpatterns: list = [
]
