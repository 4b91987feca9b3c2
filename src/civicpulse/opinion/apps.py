from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpinionConfig(AppConfig):
    name = "civicpulse.opinion"
    label = "opinion"
    verbose_name = _("Public opinion")
