"""``civicpulse``: the one entry point for operators.

Every sub-command checks the configuration first; a wrong setting ends the command with one line
saying what to fix (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import sys
from datetime import date
from pathlib import Path

EXIT_CONFIG = 2


class CommandError(Exception):
    """A command could not do its work; the message is shown as one line."""


def _setup() -> None:
    """Load and check settings, then start Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "civicpulse.settings")
    import django
    from django.conf import settings

    from civicpulse import config

    django.setup()
    config.check_database_reachable(settings.CONFIG)


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def cmd_migrate(args: argparse.Namespace) -> None:
    _setup()
    _migrate(verbosity=1)


def cmd_check(args: argparse.Namespace) -> None:
    _setup()
    from django.conf import settings
    from django.db import connection

    connection.ensure_connection()
    cfg = settings.CONFIG
    print(f"data dir   {cfg.data_dir}")
    print(f"database   {connection.vendor} ({cfg.database.get('NAME')})")
    print(f"engine     {cfg.engine}")
    print(f"queue      {'redis' if cfg.redis_url else 'embedded (store)'}")
    if args.engine:
        from civicpulse.core import analytics

        analytics.connection()
        print(f"engine     {cfg.engine} connected")


def cmd_createadmin(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    from civicpulse.core import accounts

    password = args.password or os.environ.get("CIVICPULSE_ADMIN_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise CommandError("give --password or CIVICPULSE_ADMIN_PASSWORD (no terminal to ask)")
        password = getpass.getpass(f"password for {args.username}: ")
    accounts.create_admin(args.username, password, email=args.email)
    print(f"admin {args.username} is ready")


def cmd_serve(args: argparse.Namespace) -> None:
    _setup()
    from django.conf import settings

    from civicpulse.web.server import serve

    serve(args.bind or settings.CONFIG.bind, workers=args.workers, with_worker=args.with_worker)


def _import_jobs(modules: list[str] | None) -> None:
    """Load job modules beyond the apps' own jobs.py (extensions, tests)."""
    for module in modules or []:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CommandError(f"cannot import job module {module}: {exc}") from None


def cmd_worker(args: argparse.Namespace) -> None:
    _setup()
    import logging

    from civicpulse.core.queue import REGISTRY, Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _import_jobs(args.modules)
    names = args.only or None
    unknown = set(names or []) - set(REGISTRY)
    if unknown:
        raise CommandError(
            f"unknown job(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(REGISTRY))}"
        )
    worker = Worker(poll=args.poll, names=names)
    print(f"worker {worker.owner} runs: {', '.join(worker.names)}", flush=True)
    try:
        worker.run(burst=args.burst)
    except KeyboardInterrupt:
        print("worker stopped")


def cmd_enqueue(args: argparse.Namespace) -> None:
    _setup()
    import json

    from civicpulse.core import queue

    _import_jobs(args.modules)
    try:
        payload = json.loads(args.payload) if args.payload else {}
        job_id = queue.enqueue(args.name, payload, key=args.key)
    except (KeyError, ValueError) as exc:
        raise CommandError(str(exc).strip("'\"")) from None
    print(job_id or "already queued (same key)")


def cmd_audit(args: argparse.Namespace) -> None:
    _setup()
    from civicpulse.core import audit

    count, problem = audit.verify()
    if problem:
        print(str(problem))
        raise SystemExit(1)
    print(f"audit chain intact: {count} entries")


def cmd_lake(args: argparse.Namespace) -> None:
    _setup()
    from civicpulse.core import analytics

    tables = analytics.registry().list()
    if not tables:
        print("the lake is empty")
    for info in tables:
        print(f"{info.name:24} {info.row_count:>10} rows  {info.description}")


def cmd_import(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    from civicpulse.core import areas

    if args.kind == "cases":
        from civicpulse.cases import importer

        try:
            batch = importer.import_file(
                Path(args.file),
                fmt=args.format,
                mapping=args.mapping,
                on_error=args.on_error,
                progress=True,
            )
        except importer.ImportFailed as exc:
            raise CommandError(str(exc)) from None
        print(importer.summary(batch))
        if batch.rows_quarantined and args.on_error == "reject":
            raise SystemExit(1)
        return
    if args.kind == "posts":
        from civicpulse.opinion import ingest

        try:
            batch = ingest.import_file(
                Path(args.file), source=args.source or "", mapping_name=args.mapping, progress=True
            )
        except ingest.IngestFailed as exc:
            raise CommandError(str(exc)) from None
        print(ingest.summary(batch))
        return
    if args.kind == "areas":
        try:
            created, updated = areas.import_geojson(Path(args.file))
        except areas.AreaError as exc:
            raise CommandError(str(exc)) from None
        print(f"areas: {created} created, {updated} updated")


def cmd_train(args: argparse.Namespace) -> None:
    _setup()
    from civicpulse.cases import routing

    report = routing.train_from_store()
    if not report.startswith("Router trained"):
        raise CommandError(report)
    print(report)


def cmd_apikey(args: argparse.Namespace) -> None:
    _setup()
    from civicpulse.cases.models import ApiKey
    from civicpulse.core import audit

    key = ApiKey.objects.create(name=args.name[:100])
    audit.record("cli", "open311.apikey_created", key, detail={"name": key.name})
    print(key.key)


def cmd_poll(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    from civicpulse.opinion import ingest

    batches, failed = ingest.poll_all()
    if not batches and not failed:
        print("no feed had anything new")
    for batch in batches:
        print(ingest.summary(batch))
    for source, why in failed:
        print(f"civicpulse: polling feed {source.name} failed: {why}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def cmd_sources(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    from civicpulse.opinion import ingest
    from civicpulse.opinion.models import Source

    try:
        if args.action == "add":
            source, token = ingest.add_source(args.name, args.kind, url=args.url or "")
            print(f"source {source.name} ({source.kind}) added")
            if token:
                print("its push token, shown only now:")
                print(token)
        elif args.action == "token":
            print(ingest.new_token(args.name))
        else:
            for source in Source.objects.order_by("name"):
                state = "active" if source.is_active else "inactive"
                token = f"token {source.token_prefix}..." if source.token_prefix else ""
                print(f"{source.name:24} {source.kind:5} {state:8} {source.url or token}")
    except ingest.SourceError as exc:
        raise CommandError(str(exc)) from None


def cmd_search(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    import json
    from datetime import timedelta

    from django.utils import timezone

    from civicpulse.core import audit
    from civicpulse.opinion import search
    from civicpulse.opinion.models import Rule
    from civicpulse.text.rules import RuleSyntaxError

    if (args.query is None) == (args.rule is None):
        raise CommandError("give a query or --rule ID (one of them)")
    query = args.query
    if args.rule is not None:
        query = Rule.objects.filter(pk=args.rule).first()
        if query is None:
            raise CommandError(f"no saved rule has the id {args.rule}")
    until = args.until or timezone.localdate()
    since = args.since or until - timedelta(days=29)
    try:
        result = search.search(query, since=since, until=until, limit=args.limit)
    except (RuleSyntaxError, search.SearchError) as exc:
        raise CommandError(str(exc)) from None
    audit.record(
        "cli",
        "opinion.search",
        object_type="opinion.rule",
        object_id=str(args.rule or ""),
        detail={
            "query": result.query,
            "since": str(since),
            "until": str(until),
            "matched": result.matched,
        },
    )
    summary = (
        f"{result.matched:,} posts match from {since} to {until} ({result.copies:,} copies; "
        f"{result.candidates:,} candidates checked); showing {len(result.hits)}, newest first"
    )
    if args.format == "jsonl":
        print(summary, file=sys.stderr)
        for hit in result.hits:
            row = {**vars(hit), "created_at": hit.created_at.isoformat()}
            print(json.dumps(row, ensure_ascii=False))
        return
    print(summary)
    for hit in result.hits:
        text = " ".join(hit.text.split())
        text = text if len(text) <= 100 else text[:99] + "…"
        mark = " [copy]" if hit.is_copy else ""
        at = timezone.localtime(hit.created_at).strftime("%Y-%m-%d %H:%M")
        print(f"{at}  {hit.source:12} {hit.district_code or '-':8}{mark} {text}")


def cmd_catalog(args: argparse.Namespace) -> None:
    _setup()
    _migrate()
    from civicpulse.catalog import services

    try:
        if args.action == "register":
            dataset = services.register_dataset(
                args.slug,
                title=args.title,
                title_en=args.title_en or "",
                description=args.description or "",
                owner=args.department,
                frequency=args.frequency,
                tags=args.tags or "",
                user="cli",
            )
            print(f"dataset {dataset.slug} registered for {dataset.owner.code}")
        elif args.action == "load":
            version = services.load_version(
                args.slug,
                args.source,
                kind=args.kind,
                encoding=args.encoding,
                sheet=args.sheet,
                table=args.table,
                query=args.query,
                user="cli",
                progress=sys.stderr.isatty(),
            )
            print(
                f"{args.slug} version {version.number}: {version.row_count} rows, "
                f"{len(version.schema)} columns, checksum {version.checksum[:16]}"
            )
        elif args.action == "versions":
            for v in services.versions_of(args.slug):
                print(
                    f"v{v.number:<4} {v.status:10} {v.row_count:>10} rows  "
                    f"{v.created_at:%Y-%m-%d %H:%M}  {v.checksum[:12]}  {v.source_name}"
                )
        elif args.action == "classify":
            proposal = services.classify(args.slug, args.version, user="cli")
            for finding in proposal.findings:
                if finding.tags:
                    print(f"  {finding.column}: {', '.join(finding.tags)}")
            print(f"proposed grade: {proposal.grade}")
            for reason in proposal.reasons:
                print(f"  - {reason}")
        elif args.action == "standards":
            _catalog_standards(args, services)
        elif args.action in ("release", "publish"):
            _catalog_release(args, services)
        elif args.action == "retention":
            _catalog_retention(args, services)
        elif args.action == "quality":
            from civicpulse.catalog import quality

            run = services.assess_quality(args.slug, args.version, user="cli")
            print(quality.report(run))
            print("history (latest run per version):")
            for point in quality.history(run.version.dataset):
                dims = ", ".join(f"{d} {s * 100:.2f}%" for d, s in point["dimensions"].items())
                score = "-" if point["score"] is None else f"{point['score'] * 100:.2f}%"
                print(f"  v{point['version']:<4} {score:>8}  {dims}")
        else:
            key = [k.strip() for k in (args.key or "").split(",") if k.strip()]
            print(services.compare_versions(args.slug, args.old, args.new, key=key).summary())
    except services.Unchanged as exc:
        print(str(exc))
    except (services.CatalogError, services.LoadFailed) as exc:
        raise CommandError(str(exc)) from None


def _catalog_standards(args: argparse.Namespace, services) -> None:
    """``catalog standards seed|elements|map|check``: the data standards (issue 5)."""
    from civicpulse.catalog import standards

    if args.standards_action == "seed":
        counts = services.seed_standards(user="cli")
        print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    elif args.standards_action == "elements":
        for e in services.data_elements():
            rules = [e.data_type]
            rules += [f"code list {e.code_list.identifier}"] if e.code_list else []
            rules += [f"check {e.identifier_check}"] if e.identifier_check else []
            rules += [f"format {e.format}"] if e.format else []
            rules += [f"at most {e.max_length}"] if e.max_length else []
            print(f"{e.identifier:15} {e.name_zh} / {e.name_en}: {', '.join(rules)}")
    elif args.standards_action == "map":
        mapped = services.map_column(
            args.slug, args.column, args.element, args.required, user="cli"
        )
        required = " (required)" if args.required else ""
        print(f"{args.slug}.{mapped.mapping.column} → {args.element}{required}")
        for warning in mapped.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        report = services.check_conformance(args.slug, args.version, user="cli")
        print(standards.report_text(report))


def _catalog_retention(args: argparse.Namespace, services) -> None:
    """``catalog retention SLUG --keep N ...`` sets a dataset's policy (or shows it, with no
    option); ``catalog retention apply`` archives and deletes as the policies say."""
    from civicpulse.catalog.models import RetentionPolicy

    terms = (args.keep, args.archive_after, args.delete_after)
    if args.target == "apply" and terms == (None, None, None):
        summary = services.apply_retention(user="cli")
        for key in ("archived", "deleted"):
            for item in summary[key]:
                print(f"{key} {item['dataset']} v{item['version']}")
        for item in summary["held"]:
            why = "; ".join(
                f"{r['code']} {', '.join(map(str, r.get('releases') or r.get('grants')))}"
                for r in item["reasons"]
            )
            print(f"held {item['dataset']} v{item['version']}: {why}")
        print(
            f"{summary['datasets']} dataset(s): {len(summary['archived'])} archived, "
            f"{len(summary['deleted'])} deleted ({summary['freed_bytes']} bytes freed), "
            f"{len(summary['held'])} held"
        )
        return
    dataset = services.find(args.target)
    if terms != (None, None, None):
        if args.keep is None:
            raise CommandError("give --keep N (the newest versions always kept)")
        services.set_retention(
            dataset,
            keep_versions=args.keep,
            archive_after_days=args.archive_after,
            delete_after_days=args.delete_after,
            user="cli",
        )
    policy = RetentionPolicy.objects.filter(dataset=dataset).first()
    if policy is None:
        print(f"{dataset.slug}: no retention policy, every version is kept")
        return
    def after(days: int | None) -> str:
        return "never" if days is None else f"after {days} days"

    print(
        f"{dataset.slug}: keep {policy.keep_versions} newest, archive superseded "
        f"{after(policy.archive_after_days)}, delete {after(policy.delete_after_days)}"
    )


def _catalog_release(args: argparse.Namespace, services) -> None:
    """``catalog release SLUG ...`` drafts and checks an open-data release; ``catalog publish
    ID --approver USER`` is the second person's approval and the publication (issue 5)."""
    from django.contrib.auth import get_user_model

    from civicpulse.catalog import opendata
    from civicpulse.catalog.models import OpenRelease

    def staff(username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        return user

    if args.action == "release":
        release = services.draft_release(
            args.slug,
            columns=args.columns.split(","),
            quasi_identifiers=(args.qi or "").split(","),
            no_quasi_identifiers=args.no_qi,
            k=args.k,
            title=args.title,
            title_en=args.title_en or "",
            notes=args.notes or "",
            license=args.license,
            user=staff(args.user),
        )
        print(f"release {release.pk} ({release.resource_id}): {release.get_status_display()}")
        for reason in opendata.explain(release.check_report):
            print(f"  - {reason}")
        for combo in release.check_report.get("k_anonymity", {}).get("combinations", []):
            qis = release.quasi_identifiers
            values = ", ".join(f"{k}={v}" for k, v in zip(qis, combo["values"], strict=True))
            print(f"    {combo['rows']:>4} rows: {values}")
        if release.status == OpenRelease.Status.REFUSED:
            raise CommandError("refused by the de-identification check")
        return
    key = "resource_id" if "-" in args.release else "pk"
    release = OpenRelease.objects.filter(**{key: args.release}).first()
    if release is None:
        raise CommandError(f"no open-data release {args.release}")
    release = services.approve_and_publish_release(release, staff(args.approver))
    print(f"release {release.pk} published: /data/{release.dataset.slug}/{release.resource_id}")


def cmd_identity(args: argparse.Namespace) -> None:
    """``identity sources|sync|link|review|evaluate``: the master index (issue 6)."""
    _setup()
    _migrate()
    from civicpulse.identity import services

    try:
        if args.action == "sources":
            for s in services.sources():
                origin = f"dataset {s.dataset_slug}" if s.dataset_slug else "built-in"
                owner = s.department.code if s.department else "-"
                print(
                    f"{s.name:36} {s.kind:10} trust {s.trust:>3}  {s.held:>9} records  "
                    f"{owner:10} {origin}"
                )
        elif args.action == "sync":
            _identity_sync(args, services)
        elif args.action == "link":
            try:
                run = services.run_full(args.kind, engine=args.engine, actor="cli")
            except services.MasterError:
                raise
            except Exception as exc:  # the run is recorded as failed with the same error
                raise CommandError(f"the {args.kind} link failed: {exc}") from None
            counts = ", ".join(f"{k} {v}" for k, v in (run.counts or {}).items())
            print(f"{run.kind} {run.mode} run {run.pk} {run.status}: {counts}")
        elif args.action == "review":
            for kind, waiting in services.pending_reviews().items():
                print(f"{kind:10} {waiting} pairs waiting for review")
        else:
            try:
                evaluation = importlib.import_module("civicpulse.identity.evaluation")
            except ModuleNotFoundError:
                raise CommandError("evaluation is not available in this version") from None
            print(evaluation.write_report(args.output))
            print(f"written to {args.output}")
    except (services.RecordsError, services.MasterError) as exc:
        raise CommandError(str(exc)) from None


def _identity_sync(args: argparse.Namespace, services) -> None:
    """Sync one source, or every readable one; rejected rows are listed on stderr."""
    if args.source:
        results = {args.source: services.sync(args.source, actor="cli")}
    else:
        results = services.sync_all(actor="cli")
    failed = []
    for name, report in results.items():
        if isinstance(report, str):
            failed.append(name)
            print(f"{name}: not synced: {report}", file=sys.stderr)
            continue
        print(report.summary())
        for rejected in report.rejected[:20]:
            print(f"  {name} row {rejected['row']}: {rejected['reason']}", file=sys.stderr)
    if failed:
        raise CommandError(f"{len(failed)} source(s) not synced: {', '.join(failed)}")


def cmd_demo(args: argparse.Namespace) -> None:
    _setup()
    from civicpulse.demo import loader

    _migrate()
    end = date.fromisoformat(args.end) if args.end else None
    try:
        loader.build(size=args.size, seed=args.seed, end=end, rebuild=args.rebuild)
    except loader.DemoError as exc:
        raise CommandError(str(exc)) from None
    loader.print_logins()
    if not args.no_serve:
        from django.conf import settings

        from civicpulse.web.server import serve

        serve(args.bind or settings.CONFIG.bind, workers=2, with_worker=True)


def cmd_manage(args: argparse.Namespace) -> None:
    _setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["civicpulse manage", *args.rest])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="civicpulse",
        description="CivicPulse: one platform for a city to govern with data. "
        "Configuration comes from CIVICPULSE_* environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("demo", help="build the demo city and serve it (first run: ~1-2 min)")
    s.add_argument("--size", choices=["small", "full"], default="full")
    s.add_argument("--seed", type=int, default=2260)
    s.add_argument("--end", help="last day of the demo's two years (YYYY-MM-DD; default today)")
    s.add_argument("--rebuild", action="store_true", help="erase the store and build again")
    s.add_argument("--no-serve", action="store_true", help="build only")
    s.add_argument("--bind", help="host:port to serve on (default CIVICPULSE_BIND)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("serve", help="serve the platform with gunicorn")
    s.add_argument("--bind", help="host:port (default CIVICPULSE_BIND)")
    s.add_argument("--workers", type=int, default=2, help="web server processes")
    s.add_argument(
        "--with-worker",
        action="store_true",
        help="also run a background worker (periodic jobs) beside the web server",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("migrate", help="create or upgrade the store's tables")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("createadmin", help="create a data-bureau administrator")
    s.add_argument("username")
    s.add_argument("--email", default="")
    s.add_argument("--password", help="else CIVICPULSE_ADMIN_PASSWORD or a prompt")
    s.set_defaults(func=cmd_createadmin)

    s = sub.add_parser("worker", help="run background and periodic jobs")
    s.add_argument("--burst", action="store_true", help="stop when nothing is due")
    s.add_argument("--poll", type=float, default=1.0, help="seconds between polls when idle")
    s.add_argument("--only", nargs="*", metavar="JOB", help="run only these jobs")
    s.add_argument(
        "--import",
        dest="modules",
        nargs="*",
        metavar="MODULE",
        help="also load the jobs these Python modules register",
    )
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("enqueue", help="queue a job by name (for operators and scripts)")
    s.add_argument("name")
    s.add_argument("--payload", help="JSON object")
    s.add_argument("--key", help="idempotency key: a job with this key is queued once")
    s.add_argument(
        "--import",
        dest="modules",
        nargs="*",
        metavar="MODULE",
        help="load the jobs these Python modules register",
    )
    s.set_defaults(func=cmd_enqueue)

    s = sub.add_parser(
        "import",
        help="import data: cases (311 / message-board files), posts (CSV / JSONL) "
        "or areas (GeoJSON)",
    )
    s.add_argument("kind", choices=["cases", "posts", "areas"])
    s.add_argument("file")
    s.add_argument(
        "--format",
        help="a built-in layout for cases: nyc, la2017, la2020, "
        "chicago, boston, tipdm (default: guessed from the header)",
    )
    s.add_argument(
        "--mapping",
        help="a mapping file (TOML) for any other layout; for posts also a built-in one: "
        "generic (the default), weibo2020",
    )
    s.add_argument("--source", help="posts: the source to import into (created if missing)")
    s.add_argument(
        "--on-error",
        choices=["reject", "keep"],
        default="keep",
        help="a bad row rejects the whole batch, or only itself (quarantined)",
    )
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("train", help="retrain a model from the store (router)")
    s.add_argument("model", choices=["router"])
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("apikey", help="create an Open311 API key (printed once)")
    s.add_argument("name", help="who the key is for")
    s.set_defaults(func=cmd_apikey)

    s = sub.add_parser("poll", help="ask every active RSS/Atom feed source for new posts")
    s.add_argument("what", choices=["feeds"])
    s.set_defaults(func=cmd_poll)

    s = sub.add_parser("sources", help="post sources: add (a push source gets its token), list")
    actions = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="add a source; a push source's token is printed once")
    a.add_argument("name")
    a.add_argument("--kind", choices=["file", "feed", "push"], required=True)
    a.add_argument("--url", help="a feed's address (http or https)")
    a = actions.add_parser("token", help="a new token for a push source (the old one stops)")
    a.add_argument("name")
    actions.add_parser("list", help="every source, its kind and state")
    s.set_defaults(func=cmd_sources)

    s = sub.add_parser(
        "search", help="search posts over history with a rule typed now or a saved one"
    )
    s.add_argument("what", choices=["posts"])
    s.add_argument("query", nargs="?", help='a rule, e.g. "(停水 OR 断水) AND 小区 NOT 演习"')
    s.add_argument("--rule", type=int, metavar="ID", help="a saved rule instead of a query")
    s.add_argument("--since", type=date.fromisoformat, help="first day (default: 30 days ago)")
    s.add_argument("--until", type=date.fromisoformat, help="last day (default: today)")
    s.add_argument("--limit", type=int, default=50, help="posts shown, newest first")
    s.add_argument("--format", choices=["text", "jsonl"], default="text")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("audit", help="audit chain: verify")
    s.add_argument("action", choices=["verify"])
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("lake", help="list the lake's tables")
    s.add_argument("action", choices=["list"], nargs="?", default="list")
    s.set_defaults(func=cmd_lake)

    s = sub.add_parser("catalog", help="department datasets: register, load versions, compare")
    actions = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("register", help="add a dataset to the catalog")
    a.add_argument("slug")
    a.add_argument("--title", required=True)
    a.add_argument("--title-en")
    a.add_argument("--description")
    a.add_argument("--department", required=True, help="the owner department's code")
    a.add_argument(
        "--frequency",
        choices=["daily", "weekly", "monthly", "quarterly", "yearly", "irregular"],
        default="irregular",
    )
    a.add_argument("--tags", help="comma-separated")
    a = actions.add_parser("load", help="load a file or a database table as a new version")
    a.add_argument("slug")
    a.add_argument("source", help="a CSV/xlsx/JSON/Parquet file, or a SQLAlchemy database URL")
    a.add_argument("--kind", choices=["csv", "xlsx", "json", "parquet", "sql"])
    a.add_argument("--encoding", default="auto", help="auto (UTF-8 / GB18030) or a codec name")
    a.add_argument("--sheet", help="Excel: the sheet's name or number (default: the first)")
    a.add_argument("--table", help="SQL: the table to read ([schema.]table)")
    a.add_argument("--query", help="SQL: a query whose rows to read")
    a = actions.add_parser("versions", help="list a dataset's versions")
    a.add_argument("slug")
    a = actions.add_parser("compare", help="rows and columns changed between two versions")
    a.add_argument("slug")
    a.add_argument("old", type=int)
    a.add_argument("new", type=int)
    a.add_argument("--key", help="comma-separated key columns (else whole rows are matched)")
    a = actions.add_parser(
        "classify", help="find personal-data columns of a version and propose a grade"
    )
    a.add_argument("slug")
    a.add_argument("--version", type=int, help="the version's number (default: the current)")
    a = actions.add_parser("standards", help="data elements, code lists and conformance")
    standard = a.add_subparsers(dest="standards_action", metavar="STEP", required=True)
    standard.add_parser("seed", help="write the standard code lists and data elements")
    standard.add_parser("elements", help="list the data elements")
    b = standard.add_parser("map", help="map a dataset's column onto a data element")
    b.add_argument("slug")
    b.add_argument("column")
    b.add_argument("element", help="the data element's identifier (see `standards elements`)")
    b.add_argument("--required", action="store_true", help="an empty value is a violation")
    b = standard.add_parser("check", help="check a version against the column mappings")
    b.add_argument("slug")
    b.add_argument("--version", type=int, help="the version's number (default: the current)")
    a = actions.add_parser("quality", help="measure a version against the quality rules")
    a.add_argument("slug")
    a.add_argument("--version", type=int, help="the version's number (default: the current)")
    a = actions.add_parser("release", help="draft an open-data release and check it")
    a.add_argument("slug")
    a.add_argument("--columns", required=True, help="comma-separated columns to publish")
    a.add_argument("--qi", help="comma-separated quasi-identifiers (among the columns)")
    a.add_argument("--no-qi", action="store_true", help="declare there are no quasi-identifiers")
    a.add_argument("--k", type=int, default=5)
    a.add_argument("--title", required=True)
    a.add_argument("--title-en")
    a.add_argument("--notes")
    a.add_argument("--license", default="cc-by", choices=["cc-by", "cc-zero", "odc-by", "gov-open"])
    a.add_argument("--user", required=True, help="who prepares it (a staff username)")
    a = actions.add_parser("publish", help="approve (a second person) and publish a release")
    a.add_argument("release", help="the release's number or resource id")
    a.add_argument("--approver", required=True, help="a data admin or city leader's username")
    a = actions.add_parser(
        "retention", help="set a dataset's retention policy, or `retention apply` it to all"
    )
    a.add_argument("target", metavar="SLUG|apply", help="a dataset to set, or apply to run")
    a.add_argument("--keep", type=int, help="the newest versions always kept")
    a.add_argument("--archive-after", type=int, metavar="DAYS", help="after being superseded")
    a.add_argument("--delete-after", type=int, metavar="DAYS", help="after being superseded")
    s.set_defaults(func=cmd_catalog)

    s = sub.add_parser("identity", help="master index: sources, sync, link, review, evaluate")
    actions = s.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("sources", help="every record source, its kind, trust and records")
    a = actions.add_parser("sync", help="take in a source's current rows (default: every source)")
    a.add_argument("source", nargs="?", help="a source's name (see `identity sources`)")
    a = actions.add_parser("link", help="a full run of the linker over one kind")
    a.add_argument("--kind", choices=["resident", "enterprise"], required=True)
    a.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    actions.add_parser("review", help="pairs waiting for a person's decision, per kind")
    a = actions.add_parser("evaluate", help="precision, recall and F1 on the labelled data")
    a.add_argument("--output", default="docs/identity.md", help="the document to write it into")
    s.set_defaults(func=cmd_identity)

    s = sub.add_parser("check", help="check the configuration and the store")
    s.add_argument("--engine", action="store_true", help="also start the analytics engine")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("manage", help="run a Django management command")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_manage)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from civicpulse.config import ConfigError
    from civicpulse.lake.errors import LakeError

    try:
        args.func(args)
    except (ConfigError, CommandError, LakeError) as exc:
        print(f"civicpulse: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except Exception as exc:
        from django.db import DatabaseError

        if isinstance(exc, DatabaseError):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"civicpulse: the database refused: {first}", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None
        raise


if __name__ == "__main__":
    main()
