from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnterpriseConfig(AppConfig):
    name = "civicpulse.enterprise"
    label = "enterprise"
    verbose_name = _("Enterprises")
