"""The master index's staff pages (mounted at /identity/)."""

from django.urls import path

from civicpulse.identity import views

app_name = "identity"
urlpatterns = [
    path("", views.search, name="search"),
    path("entities/<str:code>/", views.entity_view, name="entity"),
    path("events/<int:pk>/undo/", views.undo_event, name="undo"),
    path("review/", views.review, name="review"),
    path("review/<int:pk>/", views.decide, name="decide"),
]
