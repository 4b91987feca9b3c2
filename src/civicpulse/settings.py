"""Django settings, built from the checked ``CIVICPULSE_*`` environment (see config.py)."""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from civicpulse import config as _config

CONFIG = _config.load()
PACKAGE_DIR = Path(__file__).resolve().parent

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts + (["testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # its API docs page uses the package's own static files, not a CDN
    "civicpulse.core",
    "civicpulse.catalog",
    "civicpulse.identity",
    "civicpulse.enterprise",
    "civicpulse.cases",
    "civicpulse.opinion",
    "civicpulse.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "civicpulse.urls"
WSGI_APPLICATION = "civicpulse.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:cockpit"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = CONFIG.language
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = CONFIG.time_zone
USE_I18N = True
USE_TZ = True

# Uploaded files (case photos) are private: they are served only through views that check who
# asks, never from a public URL.
MEDIA_ROOT = CONFIG.data_dir / "media"

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.data_dir / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# App static dirs are served too, so a checkout works before `collectstatic` has run.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads it to send the token header
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# Notices to reporters: a real mail server when configured, else files an operator can read.
if CONFIG.smtp_url:
    from urllib.parse import parse_qs, unquote, urlsplit

    _smtp = urlsplit(CONFIG.smtp_url)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST, EMAIL_PORT = _smtp.hostname, _smtp.port or 25
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = (
        unquote(_smtp.username or ""),
        unquote(_smtp.password or ""),
    )
    EMAIL_USE_TLS = parse_qs(_smtp.query).get("tls", ["0"])[0] == "1"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = CONFIG.data_dir / "outbox"
DEFAULT_FROM_EMAIL = "12345@civicpulse.invalid"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"civicpulse": {"level": "INFO"}},
}
