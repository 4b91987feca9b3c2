from django.urls import path

from civicpulse.web import views

app_name = "web"
urlpatterns = [
    path("", views.cockpit, name="cockpit"),
]
