"""A real HTTP server for the tests of the data map's HTTP systems: it answers what a test scripts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.servers import free_port


@dataclass
class RecordedHttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedHttpServer:
    """A real HTTP server on 127.0.0.1 that answers what a test scripts and records every request it gets."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.port = free_port()
        self.requests: list[RecordedHttpRequest] = []
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []
        self.default: tuple[int, bytes, dict[str, str]] = (200, b"{}", {})
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted.requests.append(RecordedHttpRequest(self.path, dict(self.headers.items()), body))
                status, payload, headers = scripted.answers.pop(0) if scripted.answers else scripted.default
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dsr"

    def answer(self, status: int, payload: object, headers: dict[str, str] | None = None, *,
               always: bool = False, raw: bytes | None = None) -> None:
        """The next answer (``always``: every answer from now on); ``raw``: these bytes instead of JSON."""
        import json

        answer = (status, raw if raw is not None else json.dumps(payload).encode(), headers or {})
        if always:
            self.default = answer
        else:
            self.answers.append(answer)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
