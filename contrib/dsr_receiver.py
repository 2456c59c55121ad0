#!/usr/bin/env python3
"""An example receiver of dsr-mailbot's signed actions, for a mailing list kept in SQLite. Standard library only.

Copy it beside your mailing tool and adapt ``apply`` to it.  What it shows:

- the signature: ``X-DSR-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` over the exact body
  bytes, compared in constant time; a timestamp more than 300 s from this clock is refused (a replay);
- the idempotency key: the header must equal the signed body's ``id`` (the header itself is not signed); an
  action whose key was seen is answered as the first time and not done again, and a key seen with another action,
  address or body is refused (409), so a replayed request cannot spend the key of a later one; the action and the
  record of its key commit in one transaction, so a crash cannot split them;
- the answers dsr-mailbot reads: ``{"found": bool}``, ``{"records": [...]}``, ``{"deleted": n, "updated": n}``;
  401 for a bad signature (dsr-mailbot sends the request to review), 400 for a malformed body.

    DSR_SECRET=... python3 dsr_receiver.py --listen 127.0.0.1:8088 --db mailing.db
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300
MAX_BODY = 1024 * 1024
CHANGING = {"update", "optout", "withdraw", "erase"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (email TEXT PRIMARY KEY, name TEXT, subscribed INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS seen_keys (key TEXT PRIMARY KEY, body_hash TEXT NOT NULL, answer TEXT NOT NULL,
                                      at REAL NOT NULL);
"""


def signed_correctly(secret: bytes, timestamp: str, body: bytes, header: str, now: float) -> bool:
    try:
        if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            return False
    except ValueError:
        return False
    expected = "v1=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def apply(db: sqlite3.Connection, action: str, email: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The mailing list's side of each action (inside the caller's transaction)."""
    # dsr-mailbot sends its normal form (an ASCII-lower-cased domain and local part, Unicode kept as written):
    # lower-casing the Unicode too would make two different addresses one subscriber.
    email = "".join(c.lower() if c.isascii() else c for c in email)
    if action == "lookup":
        return {"found": db.execute("SELECT 1 FROM subscribers WHERE email = ?", (email,)).fetchone() is not None}
    if action == "access":
        rows = db.execute("SELECT email, name, subscribed FROM subscribers WHERE email = ?", (email,)).fetchall()
        return {"records": [{"label": "Mailing list", "fields": {
            "email": row[0], "name": row[1] or "", "subscribed": "yes" if row[2] else "no"}} for row in rows]}
    if action in ("optout", "withdraw"):
        return {"updated": db.execute("UPDATE subscribers SET subscribed = 0 WHERE email = ?", (email,)).rowcount}
    if action == "update":
        updated = 0
        if isinstance(changes.get("first_name"), str):
            updated = db.execute("UPDATE subscribers SET name = ? WHERE email = ?",
                                 (changes["first_name"], email)).rowcount
        if isinstance(changes.get("email"), str):
            updated = db.execute("UPDATE subscribers SET email = ? WHERE email = ?",
                                 (changes["email"].lower(), email)).rowcount
        return {"updated": updated}
    if action == "erase":
        return {"deleted": db.execute("DELETE FROM subscribers WHERE email = ?", (email,)).rowcount}
    raise ValueError(action)


class Receiver(BaseHTTPRequestHandler):
    secret: bytes = b""
    db_path: str = ""
    lock = threading.Lock()  # one writer at a time: SQLite

    def do_POST(self) -> None:
        length_header = self.headers.get("Content-Length", "")
        if not (length_header.isascii() and length_header.isdigit()):
            return self._answer(400, {"error": "Content-Length missing or malformed"})
        length = int(length_header)
        if length > MAX_BODY:
            return self._answer(413, {"error": "too large"})
        body = self.rfile.read(length)
        if not signed_correctly(self.secret, self.headers.get("X-DSR-Timestamp", ""), body,
                                self.headers.get("X-DSR-Signature", ""), time.time()):
            return self._answer(401, {"error": "bad signature or stale timestamp"})
        try:
            request = json.loads(body)
            action, email, key = request["action"], request["email"], request["id"]
            changes = request.get("changes") or {}
            if not all(isinstance(v, str) for v in (action, email, key)) or not isinstance(changes, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError, RecursionError):
            return self._answer(400, {"error": "malformed"})
        if action in CHANGING and (not key or self.headers.get("Idempotency-Key") != key):
            return self._answer(400, {"error": "Idempotency-Key missing or not the signed id"})
        # What the key stands for: the action, the address and the changes (a retry repeats them exactly).
        body_hash = hashlib.sha256(json.dumps([action, email, changes], sort_keys=True).encode()).hexdigest()
        with self.lock, sqlite3.connect(self.db_path) as db:
            if action in CHANGING:
                seen = db.execute("SELECT body_hash, answer FROM seen_keys WHERE key = ?", (key,)).fetchone()
                if seen is not None:
                    if seen[0] != body_hash:  # the key of another action: never answer one with the other's
                        return self._answer(409, {"error": "Idempotency-Key already used for another action"})
                    return self._answer(200, json.loads(seen[1]))
            try:
                answer = apply(db, action, email, changes)
            except ValueError:
                return self._answer(400, {"error": "unknown action"})
            if action in CHANGING:
                db.execute("INSERT INTO seen_keys (key, body_hash, answer, at) VALUES (?, ?, ?, ?)",
                           (key, body_hash, json.dumps(answer), time.time()))
        return self._answer(200, answer)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # addresses are personal data: no access log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8088")
    parser.add_argument("--db", default="mailing.db")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not os.environ.get("DSR_SECRET"):
        raise SystemExit("dsr_receiver: set DSR_SECRET to the secret dsr-mailbot signs with (its secret_env)")
    Receiver.secret = os.environ["DSR_SECRET"].encode()
    Receiver.db_path = args.db
    with sqlite3.connect(args.db) as db:
        db.executescript(SCHEMA)
    ThreadingHTTPServer((host, int(port)), Receiver).serve_forever()


if __name__ == "__main__":
    main()
