"""The operator console (``dsr-mailbot -c CONFIG web``): Starlette, server-rendered Jinja2 pages, no scripts.

Routes (a contract: scripts outside the repository use them):

=======================================  ===========================================================
``GET /login``, ``POST /login``          the form (``username``, ``password``, ``csrf_token``)
``POST /logout``                         ends the session
``GET /queue``                           requests in review or waiting for a confirmation, a page at a time
                                         (``?after=…`` / ``?before=…``: the tokens of its next/previous links)
``GET /requests/{id}``                   one request; its forms carry ``csrf_token``
``POST /requests/{id}/approve``          approve (the same path as ``requests approve``)
``POST /requests/{id}/reject``           field ``reason``
``POST /requests/{id}/answer``           field ``text``
``POST /requests/{id}/extend``           field ``reason``
``POST /requests/{id}/dismiss``          not a data-subject request: closed without a reply
``POST /requests/{id}/reveal``           field ``field``: show one masked value, audited
``GET /deadlines``                       late and soon due, per deadline profile, a page at a time (as the queue)
``GET /acts``, ``GET /acts/{id}``        acts of destruction; opening one is audited (it names the person)
``GET /report?month=YYYY-MM``            the monthly report and its weekly chart
``GET /healthz``, ``GET /metrics``       unauthenticated, no personal data (service/monitoring.py)
=======================================  ===========================================================

Every page but the last two needs a session; without one the browser is
sent to ``/login``.  Every POST needs its form's CSRF token, else 403.
Every response carries a strict Content-Security-Policy (no script at
all, styles from the console's own file), ``no-store`` caching and no
framing.  Jinja2 autoescapes everything: a subject holding HTML or a
script shows as text.  Decisions and reveals go through
:mod:`~dsr_mailbot.service.review`, with ``web:<login>`` as the actor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request as HttpRequest
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dsr_mailbot.config import LANGUAGES
from dsr_mailbot.lifecycle import DecisionError
from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.report import load_month, month_bounds
from dsr_mailbot.service.monitoring import monitoring_routes, stored_records
from dsr_mailbot.service.review import (
    REVEALABLE,
    Answer,
    Approve,
    Dismiss,
    Extend,
    Reject,
    ReviewAction,
    UnknownRequest,
    decide_request,
    reveal_field,
)
from dsr_mailbot.store.acts import list_acts, read_act
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import RequestKind, RequestState, utcnow
from dsr_mailbot.store.paging import Key, parse_key
from dsr_mailbot.web import pages
from dsr_mailbot.web.auth import DeviceCookies, LoginThrottle, Passwords, Sessions, WebSession
from dsr_mailbot.web.context import Console, authenticated, console_dir, load_codes, load_strings
from dsr_mailbot.web.login import login, login_page, logout
from dsr_mailbot.web.security import SecurityHeaders

log = logging.getLogger("dsr_mailbot")

DECIDED_STATES = frozenset(RequestState)
DECISIONS: Mapping[str, Callable[[FormData], ReviewAction]] = {
    "approve": lambda form: Approve(),
    "reject": lambda form: Reject(str(form.get("reason") or "")),
    "answer": lambda form: Answer(str(form.get("text") or "")),
    "extend": lambda form: Extend(str(form.get("reason") or "")),
    "dismiss": lambda form: Dismiss(),
}


# Pages


def _read(console: Console, load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with console.services.store.transaction() as db:
        return load(db, *args, **kwargs)


def _page_keys(request: HttpRequest) -> tuple[Key | None, Key | None] | None:
    """The ``(after, before)`` keys of a page link (at most one of them), or None when the link is not valid."""
    after, before = request.query_params.get("after"), request.query_params.get("before")
    if after is not None and before is not None:
        return None
    token = after if after is not None else before
    if token is None:
        return None, None  # the first page
    key = parse_key(token)
    if key is None:
        return None
    return (key, None) if after is not None else (None, key)


FILTER_CHOICES = {"intent": tuple(k.value for k in RequestKind if k != RequestKind.CONFIRM),
                  "state": tuple(pages.QUEUED), "language": LANGUAGES}


def _queue_filter(request: HttpRequest) -> pages.QueueFilter | None:
    """The queue's filters from the query, each one of its choices or empty; None when one is not."""
    chosen: dict[str, str | None] = {}
    for name, choices in FILTER_CHOICES.items():
        value = request.query_params.get(name) or None
        if value is not None and value not in choices:
            return None
        chosen[name] = value
    overdue = request.query_params.get("overdue") or ""
    if overdue not in ("", "1"):
        return None
    return pages.QueueFilter(chosen["intent"], chosen["state"], chosen["language"], overdue == "1")


async def queue_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    keys, chosen = _page_keys(request), _queue_filter(request)
    if keys is None or chosen is None:
        return console.page("error.html", session, 400, message_key="bad_page")
    page = await run_in_threadpool(_read, console, pages.queue, console.clock(), console.config.policy,
                                   after=keys[0], before=keys[1], chosen=chosen)
    return console.page("queue.html", session, page=page, rows=page.rows, chosen=chosen, choices=FILTER_CHOICES)


# "12", "#12", "№ 12", or a confirmation code "DSR-12-o-…": the number every reply prints ("request № 12").
_REFERENCE = re.compile(r"\s{0,20}(?:#|№|DSR-)?\s{0,5}(\d{1,11})\b")


async def search(console: Console, request: HttpRequest, session: WebSession) -> Response:
    """A request found by its number or the reference in the person's reply."""
    found = _REFERENCE.match(request.query_params.get("q", "")[:100])
    if found is None:
        return console.page("error.html", session, 404, message_key="not_found")
    return RedirectResponse(f"/requests/{int(found.group(1))}", status_code=303)


def _request_id(request: HttpRequest) -> int | None:
    raw = str(request.path_params.get("request_id", ""))
    # ASCII digits only: "²" is a digit to str.isdigit, and not to int().
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else None


async def _show_request(console: Console, session: WebSession, request_id: int, status_code: int = 200,
                        revealed: Mapping[str, str | None] | None = None, **notes: Any) -> Response:
    page = await run_in_threadpool(_read, console, pages.request_page, request_id, console.clock(),
                                   console.config.policy, revealed)
    if page is None:
        return console.not_found(session)
    shown = {"done": None, "reply": None, "refused": None, "revealed_field": None, **notes}
    return console.page("request.html", session, status_code, request=page, **shown)


async def request_view(console: Console, request: HttpRequest, session: WebSession) -> Response:
    request_id = _request_id(request)
    if request_id is None:
        return console.not_found(session)
    done = request.query_params.get("done")
    reply = request.query_params.get("reply")
    # Keys from fixed sets, never the text given: a link must not put its own words on the page.
    return await _show_request(console, session, request_id, done=done if done in DECIDED_STATES else None,
                               reply=reply if reply in ("sent", "queued") else None)


async def decide(console: Console, request: HttpRequest, session: WebSession) -> Response:
    request_id = _request_id(request)
    form = await console.form_checked(request, session)
    if form is None:
        return console.forbidden(session)
    decision = DECISIONS.get(str(request.path_params.get("decision")))
    if request_id is None or decision is None:
        return console.not_found(session)
    actor = f"web:{session.login}"
    try:
        done = await run_in_threadpool(decide_request, console.services, request_id, decision(form), actor)
    except UnknownRequest:
        return console.not_found(session)
    except DecisionError as exc:
        return await _show_request(console, session, request_id, 409, refused=str(exc))
    reply = "sent" if done.sent else ("queued" if done.queued_because else "")
    log.info("console: %s decided request %s: %s", session.login, request_id, done.state)
    return RedirectResponse(f"/requests/{request_id}?done={done.state}&reply={reply}", status_code=303)


async def reveal(console: Console, request: HttpRequest, session: WebSession) -> Response:
    request_id = _request_id(request)
    form = await console.form_checked(request, session)
    if form is None:
        return console.forbidden(session)
    field = str(form.get("field") or "")
    if request_id is None or field not in REVEALABLE:
        return console.not_found(session)
    try:
        value = await run_in_threadpool(reveal_field, console.services, request_id, field, f"web:{session.login}")
    except UnknownRequest:
        return console.not_found(session)
    return await _show_request(console, session, request_id, revealed={field: value}, revealed_field=field)


async def deadlines_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    keys = _page_keys(request)
    if keys is None:
        return console.page("error.html", session, 400, message_key="bad_page")
    page = await run_in_threadpool(_read, console, pages.deadlines, console.clock(), console.config.policy,
                                   after=keys[0], before=keys[1])
    held = await run_in_threadpool(_read, console, pages.holds)
    return console.page("deadlines.html", session, page=page, held=held, within=pages.SOON_WORKING_DAYS,
                        profiles=[f"{name} ({calendar or 'months'})"
                                  for name, calendar in console.config.policy.clock.calendars().items()])


async def acts_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    acts = await run_in_threadpool(list_acts, console.config.policy.acts_dir)
    return console.page("acts.html", session, acts=acts)


def _open_act(console: Console, act_id: str, actor: str) -> Any:
    act = read_act(console.config.policy.acts_dir, act_id)
    if act is not None:  # the act names the person: who opened it is recorded, as for any revealed field
        with console.services.store.transaction() as db:
            record_event(db, "act_opened", request_id=act.request_id, subject_ref=act.subject_ref, actor=actor,
                         at=console.clock(), act=act.act_id)
    return act


async def act_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    act_id = str(request.path_params.get("act_id", ""))
    number = act_id.removeprefix("u")
    if not (number.isascii() and number.isdigit()) or len(act_id) > 20:
        return console.not_found(session)
    act = await run_in_threadpool(_open_act, console, act_id, f"web:{session.login}")
    if act is None:
        return console.not_found(session)
    return console.page("act.html", session, act=act)


def _report(db: Any, month: str, console: Console) -> pages.ReportPage:
    policy = console.config.policy
    loaded = load_month(db, month, console.clock(), policy)
    return pages.ReportPage(month, loaded.report,
                            pages.weekly_chart_of(loaded.received, loaded.first, loaded.after))


async def report_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    this_month = console.clock().astimezone(ZoneInfo(console.config.policy.timezone)).strftime("%Y-%m")
    month = request.query_params.get("month") or this_month
    try:
        month_bounds(month)
    except ValueError:
        return console.page("error.html", session, 400, message_key="bad_month")
    page = await run_in_threadpool(_read, console, _report, month, console)
    return console.page("report.html", session, page=page)


async def home(console: Console, request: HttpRequest) -> Response:
    return RedirectResponse("/queue" if console.session_of(request) else "/login", status_code=303)


def create_app(services: Services, clock: Callable[[], datetime] = utcnow) -> Starlette:
    config = services.config
    directory = console_dir(config)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,  # every value is escaped: a subject holding <script> shows as text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    console = Console(services, load_strings(directory), load_codes(directory), env,
                      Passwords({o.login: o for o in config.web.operators}), LoginThrottle(), Sessions(clock),
                      DeviceCookies(services.keyring), clock)
    routes = [
        Route("/", partial(home, console)),
        Route("/login", partial(login_page, console), methods=["GET"]),
        Route("/login", partial(login, console), methods=["POST"]),
        Route("/logout", authenticated(console, logout), methods=["POST"]),
        Route("/queue", authenticated(console, queue_page), methods=["GET"]),
        Route("/search", authenticated(console, search), methods=["GET"]),
        Route("/requests/{request_id}", authenticated(console, request_view), methods=["GET"]),
        Route("/requests/{request_id}/reveal", authenticated(console, reveal), methods=["POST"]),
        Route("/requests/{request_id}/{decision}", authenticated(console, decide), methods=["POST"]),
        Route("/deadlines", authenticated(console, deadlines_page), methods=["GET"]),
        Route("/acts", authenticated(console, acts_page), methods=["GET"]),
        Route("/acts/{act_id}", authenticated(console, act_page), methods=["GET"]),
        Route("/report", authenticated(console, report_page), methods=["GET"]),
        *monitoring_routes(services.store, stored_records(services.store), clock),
        Mount("/static", StaticFiles(directory=str(directory / "static")), name="static"),
    ]
    # Any other Host gets 400: a page on another name resolving to this address (DNS rebinding) reads nothing.
    return Starlette(routes=routes, middleware=[
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(config.web.allowed_hosts)),
    ])


def server_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """How the console is served, by ``dsr-mailbot web`` and by the tests alike."""
    # The proxy in front (README) is on this host: its X-Forwarded-For names the client (the login throttle),
    # its X-Forwarded-Proto says HTTPS (the __Host- cookies).
    return uvicorn.Config(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                          log_level="warning", access_log=False, lifespan="off")
