"""The opinion desk's staff pages (the releases pages have their own URL conf)."""

from django.urls import path

from civicpulse.opinion.views import watch

app_name = "opinion"
urlpatterns = [
    path("", watch.issues, name="issues"),
    path("trend/", watch.sentiment_trend, name="trend"),
    path("warnings/", watch.warning_map, name="map"),
    path("warnings/<int:pk>/", watch.warning_detail, name="warning"),
]
