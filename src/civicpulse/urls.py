from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from civicpulse.web import views as web_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="web:cockpit", permanent=False)),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("cockpit/", include("civicpulse.web.urls")),
    path("open311/v2/", include("civicpulse.cases.open311_urls")),
    path("api/v1/", include("civicpulse.api")),
    path("", include("civicpulse.cases.urls")),
    path("", include("civicpulse.opinion.release_urls")),
    path("opinion/", include("civicpulse.opinion.urls")),
    path("catalog/", include("civicpulse.catalog.urls")),
    path("identity/", include("civicpulse.identity.urls")),
    path("my/", include("civicpulse.identity.myspace_urls")),
    path("data/", include("civicpulse.catalog.portal_urls")),
    path("api/3/action/", include("civicpulse.catalog.ckan_urls")),
    path("api/action/", include("civicpulse.catalog.ckan_urls")),
    path("healthz", web_views.health, name="health"),
]
