"""What every response of the console carries, and what no request may exceed.

:class:`SecurityHeaders` is the outermost layer of the console's app: a
strict Content-Security-Policy and the other headers of
:data:`SECURITY_HEADERS` on every response (the static files' and the
errors' included), a 500 page for a bug, and a cap on request bodies.
"""

from __future__ import annotations

import logging

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsr_mailbot.errors import where_raised

log = logging.getLogger("dsr_mailbot")

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
