from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "civicpulse.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Each app's jobs.py registers its background and periodic jobs with the queue.
        autodiscover_modules("jobs")
        from civicpulse.core import receivers  # noqa: F401  (connects the audit receivers)
