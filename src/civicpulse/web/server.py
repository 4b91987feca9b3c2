"""Serving with gunicorn (WSGI measured ~5x faster than ASGI here; see STACK-NOTES.md)."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from civicpulse.wsgi import application

        return application


def serve(bind: str, *, workers: int = 2) -> None:
    """Serve until interrupted; static files come from WhiteNoise, so no other server is needed."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    print(f"CivicPulse on http://{bind}/  (Ctrl-C stops)", flush=True)
    _Gunicorn(
        {"bind": bind, "workers": workers, "accesslog": "-", "timeout": 60, "graceful_timeout": 5}
    ).run()
