from django.contrib import admin

from civicpulse.identity.models import Resident

admin.site.register(Resident)
