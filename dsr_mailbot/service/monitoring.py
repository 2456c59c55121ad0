"""``GET /healthz`` and ``GET /metrics``: served by the daemon (``[daemon] metrics_listen``) and by the console.

Both are unauthenticated, so both carry no personal data: server names,
states, times and counts, with no per-person label.  Where the daemon's
record comes from is the caller's: the daemon passes its own
:class:`~dsr_mailbot.service.health.HealthBoard`; the console, another
process, reads what the daemons wrote to ``worker_status``.

``/metrics`` is built by a prometheus-client collector at each scrape,
from the store (counted by the database then) and from that record:

==========================================  =======  =====================================
``dsr_mailbot_requests{intent,state}``      gauge    requests, a mixed letter once per intent
``dsr_mailbot_requests_overdue``            gauge    open requests past their due date
``dsr_mailbot_erasures_overdue``            gauge    destructions past their date (store or data map system)
``dsr_mailbot_outbox_depth``                gauge    replies queued, not yet sent
``dsr_mailbot_replies_sent_total``          counter  replies the SMTP server took (outbox rows)
``dsr_mailbot_replies_failed_total``        counter  replies refused for good (outbox rows)
``dsr_mailbot_scan_duration_seconds``       gauge    the last pass's scan of the mailbox
``dsr_mailbot_last_pass_timestamp_seconds`` gauge    when the last pass ended (Unix time)
``dsr_mailbot_passes_total``                counter  passes since the daemon started
``dsr_mailbot_idle_reconnects_total``       counter  the mailbox watcher connecting again after a loss
``dsr_mailbot_outages_total{server}``       counter  outages begun, by server
``dsr_mailbot_server_up{server}``           gauge    1 up, 0 down (unknown until first used)
``dsr_mailbot_database_up``                 gauge    the store answered this scrape
==========================================  =======  =====================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.service.health import StatusRecord, judge, watching
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.figures import StoreFigures, outbox_depth, store_figures, worker_statuses

log = logging.getLogger("dsr_mailbot")
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

Records = Callable[[], Sequence[StatusRecord]]


def stored_records(store: Store) -> Records:
    """The daemons' records as they wrote them to the store (for the console, another process)."""
    def read() -> list[StatusRecord]:
        with store.transaction() as session:
            return [StatusRecord.from_json(row.status) for row in worker_statuses(session)]

    return read


def _database_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DsrMailbotError) else type(exc).__name__


class BotCollector(Collector):
    def __init__(self, store: Store, records: Records, clock: Callable[[], datetime]) -> None:
        self.store, self.records, self.clock = store, records, clock

    def collect(self) -> Iterator[Metric]:
        figures: StoreFigures | None = None
        record: StatusRecord | None = None
        try:
            with self.store.transaction() as session:
                figures = store_figures(session, self.clock())
            record = watching(list(self.records()))
        except Exception as exc:  # a scrape reports the outage; it never fails with a traceback
            log.debug("metrics: store unavailable: %s", _database_error(exc))
        yield GaugeMetricFamily("dsr_mailbot_database_up", "The store answered this scrape.", value=int(bool(figures)))
        if figures is not None:
            requests = GaugeMetricFamily("dsr_mailbot_requests", "Requests by intent and state (a mixed letter "
                                         "counts once per intent).", labels=["intent", "state"])
            for (intent, state), count in sorted(figures.requests.items()):
                requests.add_metric([intent, state], count)
            yield requests
            yield GaugeMetricFamily("dsr_mailbot_requests_overdue", "Open requests past their due date.",
                                    value=figures.overdue)
            yield GaugeMetricFamily("dsr_mailbot_erasures_overdue", "Destructions past their date, in the bot's "
                                    "store or a system of the data map.", value=figures.erasures_overdue)
            yield GaugeMetricFamily("dsr_mailbot_outbox_depth", "Replies queued and not yet sent.",
                                    value=figures.outbox.get("queued", 0))
            yield CounterMetricFamily("dsr_mailbot_replies_sent", "Replies the SMTP server accepted.",
                                      value=figures.outbox.get("sent", 0))
            yield CounterMetricFamily("dsr_mailbot_replies_failed", "Replies refused for good.",
                                      value=figures.outbox.get("failed", 0))
        if record is None:
            return
        if record.last_scan_seconds is not None:
            yield GaugeMetricFamily("dsr_mailbot_scan_duration_seconds", "How long the last pass's scan took.",
                                    value=record.last_scan_seconds)
        if record.last_pass_at is not None:
            yield GaugeMetricFamily("dsr_mailbot_last_pass_timestamp_seconds", "When the last pass ended.",
                                    value=record.last_pass_at.timestamp())
        yield CounterMetricFamily("dsr_mailbot_passes", "Passes over the mailbox since the daemon started.",
                                  value=record.passes)
        yield CounterMetricFamily("dsr_mailbot_idle_reconnects", "Reconnections of the mailbox watcher after a "
                                  "lost connection.", value=record.idle_reconnects)
        outages = CounterMetricFamily("dsr_mailbot_outages", "Outages begun, by server.", labels=["server"])
        up = GaugeMetricFamily("dsr_mailbot_server_up", "1 while the server answers, 0 while it is down.",
                               labels=["server"])
        for name, server in sorted(record.servers.items()):
            outages.add_metric([name], record.outages.get(name, 0))
            if server.state != "unknown":
                up.add_metric([name], 1 if server.state == "up" else 0)
        yield outages
        yield up


def monitoring_routes(store: Store, records: Records, clock: Callable[[], datetime]) -> list[Route]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BotCollector(store, records, clock))

    def healthz(_request: HttpRequest) -> Response:
        now = clock()
        database_error: str | None = None
        depth: int | None = None
        found: list[StatusRecord] = []
        try:
            with store.transaction() as session:
                depth = outbox_depth(session)
            found = list(records())
        except Exception as exc:
            database_error = _database_error(exc)
        health = judge(watching(found), now, database_error, depth)
        return JSONResponse(health.body, status_code=200 if health.healthy else 503,
                            headers={"Cache-Control": "no-store"})

    def metrics(_request: HttpRequest) -> Response:
        return Response(generate_latest(registry), media_type=PROMETHEUS_TEXT, headers={"Cache-Control": "no-store"})

    return [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
