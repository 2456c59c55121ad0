"""Helpers of the console tests: a configured operator, a console served by uvicorn, a signed-in client."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx2 as httpx
import uvicorn
from argon2 import PasswordHasher

from dsr_mailbot.service.app import build_services
from dsr_mailbot.web.app import create_app, server_config
from tests.harness import Bot
from tests.servers import free_port, wait_for_port

LOGIN, PASSWORD = "aigerim", "correct horse battery staple"
# Hashing is slow on purpose; one hash serves every test (argon2-cffi's cheapest parameters would test nothing).
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)


def operators_config(language: str = "en", port: int = 8080) -> str:
    return (f'\n[web]\nlisten = "127.0.0.1:{port}"\n[[web.operators]]\nlogin = "{LOGIN}"\n'
            f'password_hash = "{PASSWORD_HASH}"\nlanguage = "{language}"\n')


def with_operator(bot: Bot, language: str = "en", extra: str = "", port: int = 8080) -> None:
    bot.write_config(extra=extra + operators_config(language, port))


@dataclass
class Served:
    url: str
    server: uvicorn.Server


@contextmanager
def serve_console(bot: Bot, clock: Callable[[], datetime] | None = None) -> Iterator[Served]:
    """The console app of ``bot``'s configuration on a free loopback port, in a thread (``clock``: its time)."""
    port = free_port()
    app = create_app(build_services(bot.config), clock) if clock else create_app(build_services(bot.config))
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))  # as 'dsr-mailbot web' serves it
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(port)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no csrf_token field"
    return found.group(1)


def signed_in(url: str, login: str = LOGIN, password: str = PASSWORD) -> httpx.Client:
    """A client with a session.  Secure cookies travel over plain HTTP to 127.0.0.1 only in a browser;
    httpx sends them to an https URL, so the client keeps its cookies by hand."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=20)
    form = client.get("/login")
    token = csrf_of(form.text)
    client.cookies.set("dsr_login_csrf", form.cookies["dsr_login_csrf"])
    answer = client.post("/login", data={"username": login, "password": password, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    client.cookies.set("dsr_session", answer.cookies["dsr_session"])
    return client


def reveal(client: httpx.Client, request_id: int, field: str) -> httpx.Response:
    """Press "Show" on one masked field of a request page."""
    page = client.get(f"/requests/{request_id}").text
    return client.post(f"/requests/{request_id}/reveal", data={"field": field, "csrf_token": csrf_of(page)})


def wait(seconds: float) -> None:
    time.sleep(seconds)
