"""The public open-data portal (mounted at /data/): published releases only, nothing personal."""


app_name = "portal"
urlpatterns: list = [
]
