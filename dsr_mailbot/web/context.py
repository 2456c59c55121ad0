"""The console's state and what every page needs: rendering in the operator's language, and sessions.

:class:`Console` holds the services, the strings, the Jinja2 environment and
the login machinery (:mod:`~dsr_mailbot.web.auth`); :func:`authenticated`
wraps a page so that a visitor without a session is sent to ``/login``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dsr_mailbot.config import Config
from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.reply import default_templates_dir
from dsr_mailbot.shown import shown_time
from dsr_mailbot.web.auth import DeviceCookies, LoginThrottle, Passwords, Sessions, WebSession, same_token
from dsr_mailbot.web.security import MAX_FORM_BYTES

SESSION_COOKIE = "dsr_session"
LOGIN_CSRF_COOKIE = "dsr_login_csrf"
DEVICE_COOKIE = "dsr_device"  # a browser that signed in before (web/auth.py: the throttle's device key)
LOGIN_FORM_SECONDS = 15 * 60


def cookie_name(request: HttpRequest, name: str) -> str:
    """Over HTTPS (the proxy says so), the ``__Host-`` form: only this host, over TLS, with Path=/, may set it,
    so a page on a sibling domain cannot plant a session or a CSRF cookie.  Only that form is read then."""
    return f"__Host-{name}" if request.url.scheme == "https" else name


def set_cookie(response: Response, request: HttpRequest, name: str, value: str, max_age: int) -> None:
    response.set_cookie(cookie_name(request, name), value, max_age=max_age, path="/", secure=True, httponly=True,
                        samesite="strict")


def delete_cookie(response: Response, request: HttpRequest, name: str) -> None:
    response.delete_cookie(cookie_name(request, name), path="/", secure=True, httponly=True, samesite="strict")

def console_dir(config: Config) -> Path:
    return (config.templates_dir or default_templates_dir()) / "console"


def load_strings(directory: Path) -> dict[str, dict[str, str]]:
    with (directory / "strings.toml").open("rb") as handle:
        return {language: {k: str(v) for k, v in table.items()} for language, table in tomllib.load(handle).items()}


Codes = Mapping[str, Mapping[str, Mapping[str, str]]]  # category → code → language → words


def load_codes(directory: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``codes.toml``: the words for each code the console shows (intents, states, reasons, fields, events…)."""
    with (directory / "codes.toml").open("rb") as handle:
        return {category: {code: {lang: str(text) for lang, text in words.items()} for code, words in table.items()}
                for category, table in tomllib.load(handle).items()}


def code_words(codes: Codes, language: str, category: str, value: object) -> str:
    """A code in words; "code: detail" as the code's words and the detail; an unknown code as it is.

    A category "a:b" reads a pair written "x:y" (an event's ``problems``, "phone:conflict") as both in words.
    """
    text = "" if value is None else str(value)
    if ":" in category:
        first, second = category.split(":", 1)
        left, separator, right = text.partition(":")
        if separator:
            return f"{code_words(codes, language, first, left)}: {code_words(codes, language, second, right)}"
    name, separator, detail = text.partition(": ")
    words = codes.get(category, {}).get(name)
    if not words:
        return text
    shown = words.get(language) or words["en"]
    return f"{shown}: {detail}" if separator else shown


@dataclass
class Console:
    services: Services
    strings: Mapping[str, Mapping[str, str]]
    codes: Codes
    env: jinja2.Environment
    passwords: Passwords
    throttle: LoginThrottle
    sessions: Sessions
    devices: DeviceCookies
    clock: Callable[[], datetime]

    @property
    def config(self) -> Config:
        return self.services.config

    # Rendering

    def render(self, name: str, language: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        words = self.strings.get(language) or self.strings["en"]

        def t(key: str, **fill: object) -> str:
            text = words.get(key) or self.strings["en"][key]
            return text.format(**fill) if fill else text

        def local(moment: datetime | str | None, with_time: bool = True) -> str:
            return shown_time(moment, self.config.policy.timezone, with_time=with_time)

        def code(category: str, value: object) -> str:
            return code_words(self.codes, language, category, value)

        def intents(values: Iterable[object]) -> str:
            return " + ".join(code("intent", value) for value in values)

        html = self.env.get_template(name).render(t=t, code=code, intents=intents, local=local, language=language,
                                                  **values)
        return HTMLResponse(html, status_code=status_code)

    def page(self, name: str, session: WebSession, status_code: int = 200, **values: Any) -> HTMLResponse:
        return self.render(name, session.language, status_code, session=session, **values)

    # Sessions

    def session_of(self, request: HttpRequest) -> WebSession | None:
        return self.sessions.find(request.cookies.get(cookie_name(request, SESSION_COOKIE)))

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


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


Handler = Callable[[Console, HttpRequest, WebSession], Awaitable[Response]]


def authenticated(console: Console, handler: Handler) -> Callable[[HttpRequest], Awaitable[Response]]:
    async def endpoint(request: HttpRequest) -> Response:
        session = console.session_of(request)
        if session is None:
            return login_redirect()
        return await handler(console, request, session)

    return endpoint
