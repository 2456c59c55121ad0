"""Signing in and out of the console: the login form, the password check behind the throttle, sessions."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dsr_mailbot.web.auth import MAX_AGE, WebSession, same_token
from dsr_mailbot.web.context import LOGIN_CSRF_COOKIE, LOGIN_FORM_SECONDS, SESSION_COOKIE, Console, login_redirect
from dsr_mailbot.web.security import MAX_FORM_BYTES

log = logging.getLogger("dsr_mailbot")


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
    response = login_redirect()
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response
