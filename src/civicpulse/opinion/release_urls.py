"""Official releases: the staff desk under /opinion/releases/, the public pages and the RSS
feed under /releases/."""

from django.urls import path

from civicpulse.opinion.feeds import PublishedReleasesFeed
from civicpulse.opinion.views import releases as views

app_name = "releases"
urlpatterns = [
    path("opinion/releases/", views.release_list, name="list"),
    path("opinion/releases/new/", views.release_new, name="new"),
    path("opinion/releases/<int:pk>/", views.release_detail, name="detail"),
    path("opinion/releases/<int:pk>/edit/", views.release_edit, name="edit"),
    path("opinion/releases/<int:pk>/correct/", views.release_correct, name="correct"),
    path("releases/", views.public_list, name="public_list"),
    path("releases/feed.xml", PublishedReleasesFeed(), name="feed"),
    path("releases/<uuid:series>/", views.public_detail, name="public_detail"),
]
