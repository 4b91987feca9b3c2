"""Staff pages of the one window and the public intake and status pages."""

from django.urls import path

from civicpulse.cases import views

app_name = "cases"
urlpatterns = [
    path("cases/", views.queue, name="queue"),
    path("cases/triage/", views.triage, name="triage"),
    path("cases/sla/", views.sla_board, name="sla"),
    path("cases/new/", views.desk, name="desk"),
    path("cases/<str:tracking_no>/", views.detail, name="detail"),
    path("cases/<str:tracking_no>/service/", views.correct_service, name="correct"),
    path("cases/<str:tracking_no>/photo/", views.photo, name="photo"),
    path("grid/report/", views.grid_report, name="grid_report"),
    path("report/", views.public_report, name="report"),
    path("track/<str:token>/", views.track, name="track"),
]
