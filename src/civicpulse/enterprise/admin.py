from django.contrib import admin

from civicpulse.enterprise.models import Enterprise

admin.site.register(Enterprise)
