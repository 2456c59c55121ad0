"""The operator console (``dsr-mailbot -c CONFIG web``): Starlette, server-rendered Jinja2 pages, no scripts.

Routes (a contract: scripts outside the repository use them):

=======================================  ===========================================================
``GET /login``, ``POST /login``          the form (``username``, ``password``, ``csrf_token``)
``POST /logout``                         ends the session
``GET /queue``                           requests in review or waiting for a confirmation
``GET /requests/{id}``                   one request; its forms carry ``csrf_token``
``POST /requests/{id}/approve``          approve (the same path as ``requests approve``)
``POST /requests/{id}/reject``           field ``reason``
``POST /requests/{id}/answer``           field ``text``
``POST /requests/{id}/extend``           field ``reason``
``POST /requests/{id}/reveal``           field ``field``: show one masked value, audited
``GET /deadlines``                       late and soon due, per deadline profile
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
import secrets
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsr_mailbot.config import Config
from dsr_mailbot.errors import where_raised
from dsr_mailbot.lifecycle import DecisionError
from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.reply import default_templates_dir
from dsr_mailbot.replies.report import load_month, month_bounds
from dsr_mailbot.service.monitoring import monitoring_routes, stored_records
from dsr_mailbot.service.review import (
    REVEALABLE,
    Answer,
    Approve,
    Extend,
    Reject,
    ReviewAction,
    UnknownRequest,
    decide_request,
    reveal_field,
)
from dsr_mailbot.store.acts import list_acts, read_act
from dsr_mailbot.store.database import record_event
from dsr_mailbot.store.models import utcnow
from dsr_mailbot.web import pages
from dsr_mailbot.web.auth import MAX_AGE, LoginThrottle, Passwords, Sessions, WebSession, same_token

log = logging.getLogger("dsr_mailbot")

SESSION_COOKIE = "dsr_session"
LOGIN_CSRF_COOKIE = "dsr_login_csrf"
LOGIN_FORM_SECONDS = 15 * 60
MAX_FORM_BYTES = 256 * 1024  # an answer is a few paragraphs; nothing posted here is bigger
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
DECISIONS: Mapping[str, Callable[[FormData], ReviewAction]] = {
    "approve": lambda form: Approve(),
    "reject": lambda form: Reject(str(form.get("reason") or "")),
    "answer": lambda form: Answer(str(form.get("text") or "")),
    "extend": lambda form: Extend(str(form.get("reason") or "")),
}


class _BodyTooLarge(Exception):
    pass


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, the static files' and the errors' included.

    It is the outermost layer, so it also turns a bug into a plain 500 page
    and one log line naming the exception's type and place (the message
    itself may quote a request's data), and it stops reading a request body
    past :data:`MAX_FORM_BYTES` (413), whether or not it declared its length.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_FORM_BYTES:
                    raise _BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except _BodyTooLarge:
            if not started:
                await PlainTextResponse("Request body too large.", status_code=413)(scope, receive,
                                                                                   send_with_headers)
        except Exception as exc:
            log.error("console: internal error (%s) on %s", where_raised(exc), scope.get("path", "")[:100])
            if not started:
                await PlainTextResponse("Internal error; it is logged.", status_code=500)(scope, receive,
                                                                                          send_with_headers)


def console_dir(config: Config) -> Path:
    return (config.templates_dir or default_templates_dir()) / "console"


def load_strings(directory: Path) -> dict[str, dict[str, str]]:
    with (directory / "strings.toml").open("rb") as handle:
        return {language: {k: str(v) for k, v in table.items()} for language, table in tomllib.load(handle).items()}


@dataclass
class Console:
    services: Services
    strings: Mapping[str, Mapping[str, str]]
    env: jinja2.Environment
    passwords: Passwords
    throttle: LoginThrottle
    sessions: Sessions
    clock: Callable[[], datetime]

    @property
    def config(self) -> Config:
        return self.services.config

    # Rendering

    def render(self, name: str, language: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        zone = ZoneInfo(self.config.policy.timezone)
        words = self.strings.get(language) or self.strings["en"]

        def t(key: str, **fill: object) -> str:
            text = words.get(key) or self.strings["en"][key]
            return text.format(**fill) if fill else text

        def local(moment: datetime | None, with_time: bool = True) -> str:
            if moment is None:
                return "—"
            shown = moment.astimezone(zone)
            return shown.strftime("%Y-%m-%d %H:%M") if with_time else shown.strftime("%Y-%m-%d")

        html = self.env.get_template(name).render(t=t, local=local, language=language, **values)
        return HTMLResponse(html, status_code=status_code)

    def page(self, name: str, session: WebSession, status_code: int = 200, **values: Any) -> HTMLResponse:
        return self.render(name, session.language, status_code, session=session, **values)

    # Sessions

    def session_of(self, request: HttpRequest) -> WebSession | None:
        return self.sessions.find(request.cookies.get(SESSION_COOKIE))

    async def form_checked(self, request: HttpRequest, session: WebSession) -> FormData | None:
        """The posted form if it carries this session's CSRF token, else None (the caller answers 403)."""
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return None
        form = await request.form(max_files=0, max_fields=20)
        return form if same_token(session.csrf_token, form.get("csrf_token")) else None

    def not_found(self, session: WebSession) -> HTMLResponse:
        return self.page("error.html", session, 404, message_key="not_found")

    def forbidden(self, session: WebSession | None) -> HTMLResponse:
        language = session.language if session else "en"
        return self.render("error.html", language, 403, session=session, message_key="forbidden")


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


Handler = Callable[[Console, HttpRequest, WebSession], Awaitable[Response]]


def _authenticated(console: Console, handler: Handler) -> Callable[[HttpRequest], Awaitable[Response]]:
    async def endpoint(request: HttpRequest) -> Response:
        session = console.session_of(request)
        if session is None:
            return _login_redirect()
        return await handler(console, request, session)

    return endpoint


# Login


def _visitor_language(console: Console, request: HttpRequest) -> str:
    """Before login: the browser's first language the console speaks, else the policy's default."""
    for part in request.headers.get("accept-language", "")[:200].split(","):
        language = part.split(";")[0].strip().lower()[:2]
        if language in console.strings:
            return language
    default = console.config.policy.default_language
    return default if default in console.strings else "en"


def _login_form(console: Console, request: HttpRequest, status_code: int = 200, message: str | None = None,
                **fill: object) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = console.render("login.html", _visitor_language(console, request), status_code,
                              session=None, csrf_token=token, message_key=message, fill=fill)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_FORM_SECONDS, path="/login", secure=True,
                        httponly=True, samesite="strict")
    return response


async def login_page(console: Console, request: HttpRequest) -> Response:
    if console.session_of(request) is not None:
        return RedirectResponse("/queue", status_code=303)
    return _login_form(console, request)


def _client(request: HttpRequest) -> str:
    return request.client.host if request.client else "unknown"


async def login(console: Console, request: HttpRequest) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return _login_form(console, request, 400, "login_form_expired")
    form = await request.form(max_files=0, max_fields=10)
    if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        return _login_form(console, request, 403, "login_form_expired")
    username = str(form.get("username") or "").strip()[:200]
    password = str(form.get("password") or "")[:1024]
    now = console.clock()
    keys = (f"login:{username.casefold()}", f"client:{_client(request)}")
    wait = console.throttle.wait(keys, now)
    if wait.total_seconds() > 0:
        seconds = max(1, round(wait.total_seconds()))
        response = _login_form(console, request, 429, "login_throttled", seconds=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response
    operator = await run_in_threadpool(console.passwords.check, username, password)
    if operator is None:
        console.throttle.failed(keys, now)
        log.warning("console: a login was refused")  # neither the login typed nor the password: either may be a secret
        return _login_form(console, request, 401, "login_failed")
    console.throttle.succeeded(keys[0])
    token = console.sessions.start(operator)
    log.info("console: %s signed in", operator.login)
    signed_in = RedirectResponse("/queue", status_code=303)
    signed_in.set_cookie(SESSION_COOKIE, token, max_age=int(MAX_AGE.total_seconds()), path="/", secure=True,
                        httponly=True, samesite="strict")
    signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", secure=True, httponly=True, samesite="strict")
    return signed_in


async def logout(console: Console, request: HttpRequest, session: WebSession) -> Response:
    if await console.form_checked(request, session) is None:
        return console.forbidden(session)
    console.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = _login_redirect()
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


# Pages


def _read(console: Console, load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with console.services.store.transaction() as db:
        return load(db, *args, **kwargs)


async def queue_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    rows = await run_in_threadpool(_read, console, pages.queue, console.clock(), console.config.policy)
    return console.page("queue.html", session, rows=rows)


def _request_id(request: HttpRequest) -> int | None:
    raw = str(request.path_params.get("request_id", ""))
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


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
    return await _show_request(console, session, request_id, done=done if done else None,
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
    late, soon = await run_in_threadpool(_read, console, pages.deadlines, console.clock(), console.config.policy)
    return console.page("deadlines.html", session, late=late, soon=soon, within=pages.SOON_WORKING_DAYS,
                        profiles=console.config.policy.deadline_profile)


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
    if not act_id.replace("u", "", 1).isdigit() or len(act_id) > 20:
        return console.not_found(session)
    act = await run_in_threadpool(_open_act, console, act_id, f"web:{session.login}")
    if act is None:
        return console.not_found(session)
    return console.page("act.html", session, act=act)


def _report(db: Any, month: str, console: Console) -> pages.ReportPage:
    policy = console.config.policy
    loaded = load_month(db, month, console.clock(), policy)
    return pages.ReportPage(month, loaded.report,
                            pages.weekly_chart(loaded.received, policy.timezone, loaded.first, loaded.after))


async def report_page(console: Console, request: HttpRequest, session: WebSession) -> Response:
    this_month = console.clock().astimezone(ZoneInfo(console.config.policy.timezone)).strftime("%Y-%m")
    month = request.query_params.get("month") or this_month
    try:
        month_bounds(month)
        if len(month) != 7:
            raise ValueError(month)
    except ValueError:
        month = this_month
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
    console = Console(services, load_strings(directory), env,
                      Passwords({o.login: o for o in config.web.operators}), LoginThrottle(), Sessions(clock), clock)
    routes = [
        Route("/", partial(home, console)),
        Route("/login", partial(login_page, console), methods=["GET"]),
        Route("/login", partial(login, console), methods=["POST"]),
        Route("/logout", _authenticated(console, logout), methods=["POST"]),
        Route("/queue", _authenticated(console, queue_page), methods=["GET"]),
        Route("/requests/{request_id}", _authenticated(console, request_view), methods=["GET"]),
        Route("/requests/{request_id}/reveal", _authenticated(console, reveal), methods=["POST"]),
        Route("/requests/{request_id}/{decision}", _authenticated(console, decide), methods=["POST"]),
        Route("/deadlines", _authenticated(console, deadlines_page), methods=["GET"]),
        Route("/acts", _authenticated(console, acts_page), methods=["GET"]),
        Route("/acts/{act_id}", _authenticated(console, act_page), methods=["GET"]),
        Route("/report", _authenticated(console, report_page), methods=["GET"]),
        *monitoring_routes(services.store, stored_records(services.store), clock),
        Mount("/static", StaticFiles(directory=str(directory / "static")), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
