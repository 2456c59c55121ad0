"""Signing in and out of the console: the login form, the password check behind the throttle, sessions."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dsr_mailbot.web.auth import DEVICE_MAX_AGE, MAX_AGE, Busy, WebSession, attempt_keys, same_token
from dsr_mailbot.web.context import (
    DEVICE_COOKIE,
    LOGIN_CSRF_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    Console,
    cookie_name,
    delete_cookie,
    login_redirect,
    set_cookie,
)
from dsr_mailbot.web.security import MAX_FORM_BYTES

log = logging.getLogger("dsr_mailbot")


def preferred_languages(header: str) -> list[str]:
    """Accept-Language's languages, most wanted first (RFC 9110 §12.5.4: by q, then in the order given)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:200].split(",")):
        tag, *parameters = part.split(";")
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = tag.strip().lower()[:2]
        if language and weight > 0:
            ranked.append((-weight, position, language))
    return [language for _weight, _position, language in sorted(ranked)]


def _visitor_language(console: Console, request: HttpRequest) -> str:
    """Before login: the browser's most wanted language the console speaks, else the policy's default."""
    for language in preferred_languages(request.headers.get("accept-language", "")):
        if language in console.strings:
            return language
    default = console.config.policy.default_language
    return default if default in console.strings else "en"


def _login_form(console: Console, request: HttpRequest, status_code: int = 200, message: str | None = None,
                **fill: object) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = console.render("login.html", _visitor_language(console, request), status_code,
                              session=None, csrf_token=token, message_key=message, fill=fill)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, LOGIN_FORM_SECONDS)
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
    if not same_token(request.cookies.get(cookie_name(request, LOGIN_CSRF_COOKIE)), form.get("csrf_token")):
        return _login_form(console, request, 403, "login_form_expired")
    username = str(form.get("username") or "").strip()[:200]
    password = str(form.get("password") or "")[:1024]
    now = console.clock()
    device = console.devices.device_key(request.cookies.get(cookie_name(request, DEVICE_COOKIE)), username, now)
    keys = attempt_keys(_client(request), username, device)
    wait = console.throttle.begin(keys, now)  # recorded before the check: concurrent attempts cannot slip past
    if wait.total_seconds() > 0:
        seconds = max(1, round(wait.total_seconds()))
        response = _login_form(console, request, 429, "login_throttled", seconds=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response
    try:
        operator = await run_in_threadpool(console.passwords.check, username, password)
    except Busy:
        console.throttle.cancel(keys)  # not checked: the attempt does not count, against a stranger or the owner
        response = _login_form(console, request, 503, "login_busy")
        response.headers["Retry-After"] = "5"
        return response
    if operator is None:
        log.warning("console: a login was refused")  # neither the login typed nor the password: either may be a secret
        return _login_form(console, request, 401, "login_failed")
    console.throttle.succeeded(keys)
    token = console.sessions.start(operator)
    log.info("console: %s signed in", operator.login)
    signed_in = RedirectResponse("/queue", status_code=303)
    set_cookie(signed_in, request, SESSION_COOKIE, token, int(MAX_AGE.total_seconds()))
    set_cookie(signed_in, request, DEVICE_COOKIE, console.devices.issue(operator.login, now),
               int(DEVICE_MAX_AGE.total_seconds()))
    delete_cookie(signed_in, request, LOGIN_CSRF_COOKIE)
    return signed_in


async def logout(console: Console, request: HttpRequest, session: WebSession) -> Response:
    if await console.form_checked(request, session) is None:
        return console.forbidden(session)
    console.sessions.end(request.cookies.get(cookie_name(request, SESSION_COOKIE)))
    response = login_redirect()
    delete_cookie(response, request, SESSION_COOKIE)
    return response
