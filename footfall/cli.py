"""The ``footfall`` command (click): ``serve``, ``drain``, ``stats``, ``import-log``, ``numbers`` and
``rollups``.

Each command starts the embedded Redis and MongoDB-wire servers for whichever of
``FOOTFALL_REDIS_URL`` / ``FOOTFALL_MONGODB_URI`` is unset (see :mod:`footfall.embedded`) and stops
them when it exits, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import click

from footfall.embedded import EmbeddedServers
from footfall.errors import FootfallError
from footfall.settings import Settings

__all__ = ["main"]

log = logging.getLogger("footfall.cli")


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into :class:`SystemExit` so ``finally`` blocks (stopping servers) run."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _stores(require_secret_key: bool) -> Iterator[Settings]:
    """Embedded servers as needed, then the settings read from the (completed) environment."""
    data_dir = os.environ.get("FOOTFALL_DATA_DIR") or ".footfall"
    try:
        with _sigterm_exits(), EmbeddedServers(data_dir, require_secret_key=require_secret_key):
            yield Settings.from_env()
    except FootfallError as exc:
        raise click.ClickException(str(exc)) from exc


@contextlib.contextmanager
def _mongo(settings: Settings) -> Iterator[Any]:
    """The footfall MongoDB database, its client closed on the way out."""
    from footfall.stores.connect import mongo_database

    db = mongo_database(settings)
    try:
        yield db
    finally:
        db.client.close()


@click.group()
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """footfall: true total visits versus unique visitors for your site."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run footfall's API, POST /analytics/track and the live streams under gunicorn, with a drain process.

    Each worker is an asyncio event loop (uvicorn's gunicorn worker) running footfall's ASGI app
    (footfall.live.app): an open live stream costs a coroutine, not a thread, so hundreds of open
    dashboards leave tracking unaffected. On SIGTERM or Ctrl-C, gunicorn stops taking requests first
    (open streams are closed after a few seconds); then the drain writes every queued event to
    MongoDB and exits; then the embedded stores stop.
    """
    from gunicorn.app.base import BaseApplication

    with _stores(require_secret_key=True) as settings:
        settings.signing_keys  # noqa: B018 - refuse to start without a key, before forking
        os.environ["FOOTFALL_INPROCESS_DRAIN"] = "false"  # the workers leave draining to the process below

        class FootfallApplication(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", f"{host}:{port}")
                self.cfg.set("workers", workers)
                self.cfg.set("worker_class", "footfall.live.worker.FootfallUvicornWorker")
                self.cfg.set("graceful_timeout", 10)
                self.cfg.set("accesslog", None)

            def load(self) -> Any:  # runs in each worker, after the fork: no client crosses it
                from footfall.live.app import create_asgi_app

                return create_asgi_app(Settings.from_env())

        drain = subprocess.Popen([sys.executable, "-m", "footfall", "drain"], stdin=subprocess.DEVNULL,
                                 start_new_session=True)  # stopped by us, after gunicorn
        try:
            click.echo(f"footfall serving on http://{host}:{port} (POST /analytics/track, GET /analytics/stats, "
                       "GET /api/stats, GET /analytics/live)", err=True)
            FootfallApplication().run()
        finally:
            drain.send_signal(signal.SIGTERM)
            try:
                drain.wait(60)
            except subprocess.TimeoutExpired:
                log.error("the drain did not stop within 60 s; killing it (queued events stay in Redis)")
                drain.kill()


@main.command()
@click.option("--batch-size", type=click.IntRange(1, 10000), default=None,
              help="Events per MongoDB batch (default FOOTFALL_DRAIN_BATCH_SIZE, 500).")
@click.option("--consumer", default=None, help="Consumer name in the Redis group (default host-pid).")
def drain(batch_size: int | None, consumer: str | None) -> None:
    """Move queued events from Redis to MongoDB until SIGTERM/Ctrl-C, then write what is queued."""
    import threading

    from footfall.drain import Drain
    from footfall.stores.connect import redis_client

    stop = threading.Event()
    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        worker = Drain(redis_client(settings, for_drain=True), db, consumer=consumer,
                       batch_size=batch_size or settings.drain_batch_size, claim_idle=settings.drain_claim_idle)

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("drain %s running", worker.consumer)
        worker.run(stop)


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


@main.command()
@click.option("--start", callback=_parse_date, help="First UTC day, YYYY-MM-DD (default today).")
@click.option("--end", callback=_parse_date, help="Last UTC day, inclusive (default today).")
@click.option("--site", default=None, help="One site (default: all sites).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as GET /analytics/stats answers.")
def stats(start: date | None, end: date | None, site: str | None, as_json: bool) -> None:
    """Print total visits, unique visitors and page views for a range of days."""
    from footfall.dashboard_queries import day_range, summarize

    try:
        days = day_range(start, end, datetime.now(UTC).date())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        try:
            counts = summarize(db, days.start, days.end, site, rollups=False)
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from exc
    counts = {key: counts[key] for key in ("total_visits", "unique_visitors", "page_views")}
    result = {**counts, "start": days.first.isoformat(), "end": days.last.isoformat(), "site": site}
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{days.first} .. {days.last}  site: {site or 'all sites'}")
    click.echo(f"  total visits     {counts['total_visits']:>10}")
    click.echo(f"  unique visitors  {counts['unique_visitors']:>10}")
    click.echo(f"  page views       {counts['page_views']:>10}")


class _ImportBars:
    """``import-log``'s progress on stderr (click progress bars): *reading* the log (its bytes: an ETA
    when the size is known, none for standard input; lines read and lines/s), then *writing* (page
    views written of those found, with their rate and an ETA)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._phase = ""
        self._done = 0
        self._started = time.monotonic()

    def __call__(self, event: Any) -> None:
        if event.phase != self._phase:
            self.close()
            self._phase, self._done, self._started = event.phase, 0, time.monotonic()
            label = "reading" if event.phase == "read" else "writing"
            sized = event.total is not None
            self._bar = click.progressbar(
                None if sized else _unsized(), length=event.total, label=label, file=sys.stderr,
                show_eta=sized, show_percent=sized, item_show_func=self._describe)
            self._bar.__enter__()
        self._bar.update(max(0, event.done - self._done), current_item=event)
        self._done = event.done

    def _describe(self, event: Any) -> str | None:
        if event is None:
            return None
        elapsed = max(time.monotonic() - self._started, 1e-6)
        if event.phase == "read":
            return f"{event.lines:,} lines, {event.lines / elapsed:,.0f} lines/s"
        return f"{event.done:,}/{event.total:,} page views, {event.done / elapsed:,.0f}/s"

    def close(self) -> None:
        """Finish the current bar (a new line on stderr)."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _unsized() -> Iterator[None]:
    """An iterable without a length: click's progress bar then shows no percentage and no ETA."""
    yield from ()


def progress_wanted(quiet: bool, stream: Any = None) -> bool:
    """Whether ``import-log`` draws progress bars: only on a terminal, and not with ``--quiet``.

    :param quiet: ``--quiet`` was given.
    :param stream: where the bars would go (default ``sys.stderr``).
    """
    stream = sys.stderr if stream is None else stream
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


@main.command("import-log")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--site", default=None, help="Site the log belongs to (default FOOTFALL_DEFAULT_SITE).")
@click.option("--format", "log_format", default="combined", show_default=True,
              type=click.Choice(["combined"]), help="Access-log format (Apache/nginx combined).")
@click.option("--include-bots", is_flag=True, help="Count crawlers and requests with no User-Agent too.")
@click.option("--host", "hosts", multiple=True,
              help="The site's own host name (repeat for several): referrers on it are same-site.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars (they are drawn only on a terminal anyway).")
def import_log(path: str, site: str | None, log_format: str, include_bots: bool, hosts: tuple[str, ...],
               quiet: bool) -> None:
    """Import an Apache/nginx combined-format access log (PATH; gzip read as such; - for stdin)
    through the same case decision, then build the rollups of the hours it wrote."""
    from footfall import importer

    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        bars = _ImportBars() if progress_wanted(quiet) else None
        try:
            summary = importer.import_log(
                path, db, site=site or settings.default_site, session_ttl=settings.session_ttl,
                include_bots=include_bots, log_format=log_format, host=[host.lower() for host in hosts],
                geoip_db=settings.geoip_db, progress=bars)
        except (FootfallError, OSError, EOFError) as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            if bars is not None:
                bars.close()
        # the dashboard reads the rollups: build the imported hours now rather than at the next drain pass
        from footfall.stores.rollup_build import refresh

        target = site or settings.default_site
        try:
            hours = refresh(db, target)
        except FootfallError as exc:
            click.echo(f"rollups not built ({exc}); the next drain pass or `footfall rollups rebuild` builds them",
                       err=True)
            hours = 0
    for key, value in summary.as_dict().items():
        click.echo(f"{key.replace('_', ' '):<20} {value:>10}")
    click.echo(f"{'rollup hours built':<20} {hours:>10}")


@main.group()
def numbers() -> None:
    """Visitor numbers (#0001, #0002, …): status and backfill."""


@numbers.command("status")
@click.option("--site", default=None, help="One site (default: every site).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def numbers_status(site: str | None, as_json: bool) -> None:
    """Print each site's high-water mark, visitors, and visitors without a number."""
    from footfall.stores.visitor_numbers import status

    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        try:
            report = status(db, site)
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report))
        return
    if not report:
        click.echo("no visitors yet")
    for name, row in report.items():
        click.echo(f"site {name}: high-water mark {row['high_water_mark']}, highest assigned "
                   f"{row['highest_assigned']}, {row['visitors']} visitors, {row['without_number']} without a number")


@numbers.command("backfill")
@click.option("--site", default=None, help="One site (default: every site).")
def numbers_backfill(site: str | None) -> None:
    """Number the visitors that lack a number, in first-seen order (run twice: same result)."""
    from footfall.stores.connect import redis_client
    from footfall.stores.visitor_numbers import backfill

    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        client = redis_client(settings, for_drain=True)
        try:
            assigned = backfill(db, site, redis_client=client, visitor_ttl=settings.visitor_ttl)
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            client.close()
    for name, count in assigned.items():
        click.echo(f"site {name}: {count} visitors numbered")
    if not assigned:
        click.echo("no visitors yet")


@main.group()
def rollups() -> None:
    """The rollups the dashboard reads (collection ``rollups``): rebuild or check a range of days."""


def _rollup_range(start: date, end: date) -> None:
    if end < start:
        raise click.BadParameter(f"end {end.isoformat()} is before start {start.isoformat()}", param_hint="--end")


@contextlib.contextmanager
def _hours_bar(label: str, hours: int, quiet: bool) -> Iterator[Any]:
    """A progress bar over ``hours`` on stderr (hours done, rate, ETA); a no-op when ``quiet`` or
    when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    bar: Any
    with click.progressbar(length=hours, label=label, file=sys.stderr, show_eta=True, show_percent=True,
                           item_show_func=lambda _: None) as bar:
        yield bar.update


@rollups.command("rebuild")
@click.option("--start", callback=_parse_date, required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", callback=_parse_date, required=True, help="Last UTC day, inclusive, YYYY-MM-DD.")
@click.option("--site", default=None, help="One site (default: every site).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def rollups_rebuild(start: date, end: date, site: str | None, quiet: bool) -> None:
    """Recompute the rollups of a range of UTC days exactly from the raw sessions, page views, custom
    events and visitors (idempotent: running it twice changes nothing)."""
    from footfall.stores.rollup_build import rebuild, rollup_sites

    _rollup_range(start, end)
    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        try:
            names = rollup_sites(db, site)
            hours = ((end - start).days + 1) * 24 * len(names)
            with _hours_bar("rebuilding", hours, quiet) as progress:
                built = rebuild(db, start, end, site, progress)
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"rollups rebuilt for {start} .. {end}, {len(names)} site(s) ({', '.join(names) or 'none'}): "
               f"{built} hours")


@rollups.command("check")
@click.option("--start", callback=_parse_date, required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--end", callback=_parse_date, required=True, help="Last UTC day, inclusive, YYYY-MM-DD.")
@click.option("--site", default=None, help="One site (default: every site).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def rollups_check(start: date, end: date, site: str | None, quiet: bool) -> None:
    """Compare the stored rollups of a range of UTC days with the raw collections and print every
    difference; exit status 1 when there is one (run it after a crash; `rollups rebuild` repairs)."""
    from footfall.stores.rollup_build import rollup_sites
    from footfall.stores.rollup_check import check

    _rollup_range(start, end)
    with _stores(require_secret_key=False) as settings, _mongo(settings) as db:
        try:
            names = rollup_sites(db, site)
            with _hours_bar("checking", ((end - start).days + 1) * 24 * len(names), quiet) as progress:
                differences = check(db, start, end, site, progress)
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from exc
    for diff in differences:
        click.echo(f"{diff.site} {diff.level} {diff.at:%Y-%m-%dT%H}Z {diff.kind}: stored {diff.stored} "
                   f"!= raw {diff.raw}")
    click.echo(f"{len(differences)} difference(s) in {start} .. {end}, {len(names)} site(s)")
    if differences:
        sys.exit(1)
