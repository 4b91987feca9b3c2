"""The opinion desk's staff pages (the releases pages have their own URL conf)."""

from django.urls import path

from civicpulse.opinion.views import plans, search, watch

app_name = "opinion"
urlpatterns = [
    path("", watch.issues, name="issues"),
    path("trend/", watch.sentiment_trend, name="trend"),
    path("warnings/", watch.warning_map, name="map"),
    path("warnings/<int:pk>/", watch.warning_detail, name="warning"),
    path("search/", search.search_posts, name="search"),
    path("tasks/", plans.my_tasks, name="tasks"),
    path("tasks/<int:pk>/done/", plans.complete, name="task-done"),
]
