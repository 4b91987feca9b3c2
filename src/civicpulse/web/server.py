"""Serving with gunicorn (WSGI measured ~5x faster than ASGI here; see STACK-NOTES.md)."""

from __future__ import annotations

import subprocess
import sys

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


def serve(bind: str, *, workers: int = 2, with_worker: bool = False) -> None:
    """Serve until interrupted; static files come from WhiteNoise, so no other server is needed.

    ``with_worker`` also runs one background worker beside the web server, so that a single
    command (the demo) keeps its periodic analytics fresh.
    """
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    worker = None
    if with_worker:
        worker = subprocess.Popen([sys.executable, "-m", "civicpulse.cli", "worker", "--poll", "5"])
    print(f"CivicPulse on http://{bind}/  (Ctrl-C stops)", flush=True)
    try:
        _Gunicorn(
            {
                "bind": bind,
                "workers": workers,
                "accesslog": "-",
                "timeout": 60,
                "graceful_timeout": 5,
                "control_socket_disable": True,
            }
        ).run()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=10)
