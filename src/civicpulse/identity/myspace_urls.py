""" "My space" for residents and enterprise representatives (mounted at /my/)."""

from django.urls import path

from civicpulse.identity import views

app_name = "myspace"
urlpatterns = [
    path("", views.my_home, name="home"),
    path("login/", views.MySpaceLogin.as_view(), name="login"),
    path("logout/", views.MySpaceLogout.as_view(), name="logout"),
    path("register/", views.my_register, name="register"),
    path("requests/<str:tracking_no>/", views.my_request, name="request"),
]
