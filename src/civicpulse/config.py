"""Configuration from ``CIVICPULSE_*`` environment variables, checked before anything starts.

A city's operator should see one line saying what to fix, never a traceback: every check here
raises :class:`ConfigError` with such a line, and the CLI prints it and exits with status 2.
The table of variables in README.md is generated from ``VARIABLES`` so the two cannot drift.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url


class ConfigError(Exception):
    """A setting is wrong; the message is one line telling the operator what to fix."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("CIVICPULSE_DATA_DIR", "./var", "where the store, the lake and the secret key live"),
    Variable(
        "CIVICPULSE_DATABASE_URL",
        "sqlite:///<data dir>/civicpulse.sqlite3",
        "operational store; e.g. postgres://user@127.0.0.1:5432/civicpulse",
    ),
    Variable("CIVICPULSE_ENGINE", "duckdb", "analytics engine over the lake: duckdb or spark"),
    Variable("CIVICPULSE_SPARK_MASTER", "local[2]", "Spark master when the engine is spark"),
    Variable(
        "CIVICPULSE_SECRET_KEY",
        "generated once into <data dir>/secret_key",
        "Django secret key (sessions, signed links)",
    ),
    Variable("CIVICPULSE_LANGUAGE", "zh-hans", "default interface language: zh-hans or en"),
    Variable("CIVICPULSE_TIME_ZONE", "Asia/Shanghai", "the city's time zone"),
    Variable("CIVICPULSE_REDIS_URL", "(empty: embedded queue)", "job queue on Redis instead"),
    Variable(
        "CIVICPULSE_SMTP_URL",
        "(empty: mail kept in <data dir>/outbox)",
        "mail server for notices, e.g. smtp://user:pass@mail.gov:587?tls=1",
    ),
    Variable(
        "CIVICPULSE_SMS_WEBHOOK",
        "(empty: SMS notices wait)",
        "an SMS gateway URL that takes a JSON POST {to, body}",
    ),
    Variable("CIVICPULSE_BIND", "127.0.0.1:8000", "address `civicpulse serve` listens on"),
    Variable(
        "CIVICPULSE_SITE_URL",
        "http://<bind>",
        "the address residents reach the site at (links in notices)",
    ),
    Variable("CIVICPULSE_ALLOWED_HOSTS", "127.0.0.1,localhost", "host names the site answers"),
    Variable("CIVICPULSE_DEBUG", "0", "1 shows Django's debug pages (never in production)"),
)

ENGINES = ("duckdb", "spark")
LANGUAGES = ("zh-hans", "en")


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database: dict
    database_url: str
    engine: str
    spark_master: str
    secret_key: str
    language: str
    time_zone: str
    redis_url: str
    smtp_url: str
    sms_webhook: str
    site_url: str
    bind: str
    allowed_hosts: list[str]
    debug: bool

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _data_dir() -> Path:
    path = Path(_env("CIVICPULSE_DATA_DIR", "./var")).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"data dir {path} is not writable ({exc.strerror or exc}): "
            "set CIVICPULSE_DATA_DIR to a directory this user can write"
        ) from None
    return path


def _database(url: str) -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "pgsql"):
        raise ConfigError(
            f"CIVICPULSE_DATABASE_URL scheme {scheme or '(none)'!r} is not supported: "
            "use sqlite:///path or postgres://user@host:5432/name"
        )
    try:
        db = dj_database_url.parse(url, conn_max_age=60)
    except Exception as exc:  # dj-database-url raises plain ValueError/KeyError/... on junk
        raise ConfigError(f"CIVICPULSE_DATABASE_URL {url!r} does not parse: {exc}") from None
    if db["ENGINE"].endswith("sqlite3"):
        # IMMEDIATE: a transaction takes the write lock when it starts, so two processes that
        # read-then-write (the audit chain, intake) queue for up to `timeout` seconds instead
        # of one failing at once with "database is locked".
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        db["CONN_MAX_AGE"] = 0
    elif not db.get("NAME"):
        raise ConfigError(f"CIVICPULSE_DATABASE_URL {url!r} names no database: add /dbname")
    return db


def _secret_key(data_dir: Path) -> str:
    given = _env("CIVICPULSE_SECRET_KEY")
    if given:
        return given
    path = data_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def _url(name: str, schemes: tuple[str, ...]) -> str:
    value = _env(name)
    if value and urlsplit(value).scheme not in schemes:
        raise ConfigError(f"{name} must be a {' or '.join(schemes)}:// URL")
    return value


def load() -> Config:
    """Read and check the environment; raise ConfigError with one line on the first problem."""
    data_dir = _data_dir()
    url = _env("CIVICPULSE_DATABASE_URL", f"sqlite:///{data_dir / 'civicpulse.sqlite3'}")
    engine = _env("CIVICPULSE_ENGINE", "duckdb").lower()
    if engine not in ENGINES:
        raise ConfigError(
            f"CIVICPULSE_ENGINE={engine!r} is unknown: use one of {', '.join(ENGINES)}"
        )
    language = _env("CIVICPULSE_LANGUAGE", "zh-hans").lower()
    if language not in LANGUAGES:
        raise ConfigError(
            f"CIVICPULSE_LANGUAGE={language!r} is unknown: use one of {', '.join(LANGUAGES)}"
        )
    time_zone = _env("CIVICPULSE_TIME_ZONE", "Asia/Shanghai")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CIVICPULSE_TIME_ZONE={time_zone!r} is not a known time zone (e.g. Asia/Shanghai)"
        ) from None
    bind = _env("CIVICPULSE_BIND", "127.0.0.1:8000")
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"CIVICPULSE_BIND={bind!r} must be host:port, e.g. 127.0.0.1:8000")
    return Config(
        data_dir=data_dir,
        database=_database(url),
        database_url=url,
        engine=engine,
        spark_master=_env("CIVICPULSE_SPARK_MASTER", "local[2]"),
        secret_key=_secret_key(data_dir),
        language=language,
        time_zone=time_zone,
        redis_url=_env("CIVICPULSE_REDIS_URL"),
        smtp_url=_url("CIVICPULSE_SMTP_URL", ("smtp",)),
        sms_webhook=_url("CIVICPULSE_SMS_WEBHOOK", ("http", "https")),
        site_url=_url("CIVICPULSE_SITE_URL", ("http", "https")) or f"http://{bind}",
        bind=bind,
        allowed_hosts=[
            h.strip()
            for h in _env("CIVICPULSE_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
            if h.strip()
        ],
        debug=_env("CIVICPULSE_DEBUG", "0") == "1",
    )


def check_database_reachable(config: Config, timeout: float = 3.0) -> None:
    """Fail fast with one line when a server database does not answer."""
    db = config.database
    if db["ENGINE"].endswith("sqlite3"):
        parent = Path(db["NAME"]).parent
        if not parent.is_dir():
            raise ConfigError(f"the SQLite file's directory {parent} does not exist")
        return
    host, port = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)
    if host.startswith("/"):
        return  # a Unix socket: psycopg reports clearly enough
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the database server {host}:{port} ({exc.strerror or exc}): "
            "start it or fix CIVICPULSE_DATABASE_URL"
        ) from None


def readme_table() -> str:
    """The README's table of settings, generated so it never drifts from the code."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{v.name}` | `{v.default}` | {v.meaning} |" for v in VARIABLES]
    return "\n".join(rows)
