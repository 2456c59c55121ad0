"""HTTP systems: data behind an API (a CRM, a mailing tool, a shop platform), reached by signed JSON POSTs.

Every action is a POST of JSON to the system's ``url``::

    {"action": "lookup"|"access"|"update"|"optout"|"withdraw"|"erase",
     "id": "<the action's id>", "email": "<the address>", "changes": {...}}

signed in the style of Stripe's and GitHub's webhooks:

- ``Idempotency-Key``: the action's id, the same on every retry; a receiver
  that has seen it answers as before and does nothing again;
- ``X-DSR-Timestamp``: Unix seconds; a receiver refuses one more than
  :data:`TOLERANCE_SECONDS` away from its clock (a replayed request);
- ``X-DSR-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

Answers: 2xx is done (``lookup``: ``{"found": bool}``; ``access``:
``{"records": [{"label": str, "fields": {str: str}}]}``; ``erase`` may say
``{"deleted": n, "updated": n}``).  A 4xx is permanent (the request goes to
review, naming the system), except 408, 425 and 429, which are retried like a
5xx, a timeout or a refused connection, honouring ``Retry-After``.
``contrib/dsr_receiver.py`` is a small receiver that checks all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from dsr_mailbot.errors import SystemRefused, SystemUnavailable
from dsr_mailbot.systems.protocol import (
    MAX_LABEL_CHARS,
    MAX_VALUE_CHARS,
    BeforeCommit,
    Changes,
    Done,
    Found,
    HeldRecord,
    SystemHold,
    TableCheck,
    shown,
)

if TYPE_CHECKING:
    import httpx2

TOLERANCE_SECONDS = 300
RETRIED_4XX = frozenset({408, 425, 429})
MAX_ANSWER_BYTES = 1024 * 1024  # an access answer is about one person: read no more (decompressed)
MAX_RETRY_AFTER = 86_400
SIGNATURE_VERSION = "v1"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 over the timestamp, a dot and the exact body bytes."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str, now: float,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """A receiver's check: a fresh timestamp and a matching signature, compared in constant time."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    sent = int(timestamp)
    if abs(now - sent) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds, or an HTTP date (RFC 9110 §10.2.3).

    At most :data:`MAX_RETRY_AFTER` (a day): a system cannot park an erasure for a year.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value[:9]), MAX_RETRY_AFTER))
    try:
        return min(max(parsedate_to_datetime(value).timestamp() - now, 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class HttpConnector:
    """One ``kind = "http"`` entry."""

    def __init__(self, name: str, url: str, secret: str, *, timeout_seconds: float = 10, read_only: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self.url = url
        self.secret = secret.encode("utf-8")
        self.timeout = timeout_seconds
        self.read_only = read_only
        self.clock = clock
        self._client: httpx2.Client | None = None

    @property
    def name(self) -> str:
        return self._name

    def _post(self, action: str, email: str, key: str, changes: Changes | None = None) -> dict[str, Any]:
        import httpx2

        if not key.isascii():
            raise SystemRefused(f'system "{self._name}": an idempotency key must be ASCII')
        body = json.dumps({"action": action, "id": key, "email": email, "changes": dict(changes or {})},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, "X-DSR-Timestamp": timestamp,
                   "X-DSR-Signature": signature(self.secret, timestamp, body), "User-Agent": "dsr-mailbot"}
        if self._client is None:
            # No proxy or netrc from the environment: the data map says where the person's data go.
            self._client = httpx2.Client(timeout=self.timeout, follow_redirects=False, trust_env=False)
        deadline = time.monotonic() + self.timeout  # for the whole exchange, not for each read
        try:
            with self._client.stream("POST", self.url, content=body, headers=headers) as response:
                status = response.status_code
                retry_after = response.headers.get("Retry-After")
                content = self._read_bounded(response, deadline) if status < 300 else b""
        except httpx2.InvalidURL:
            raise SystemRefused(f'system "{self._name}": its url is not a usable URL') from None
        except httpx2.HTTPError as exc:  # refused, reset, timed out: the text may name the URL
            raise SystemUnavailable(f'system "{self._name}": unreachable ({type(exc).__name__})') from None
        if status >= 500 or status in RETRIED_4XX:
            error = SystemUnavailable(f'system "{self._name}": answered {status}')
            error.retry_after = retry_after_seconds(retry_after, self.clock())
            error.status = status
            raise error
        if status >= 300:
            raise SystemRefused(f'system "{self._name}": refused the {action} ({status})')
        if not content:
            return {}
        try:
            answer = json.loads(content)
        except (ValueError, RecursionError):
            raise SystemRefused(f'system "{self._name}": the {action} answer is not JSON') from None
        if not isinstance(answer, dict):
            raise SystemRefused(f'system "{self._name}": the {action} answer is not a JSON object')
        return answer

    def _read_bounded(self, response: httpx2.Response, deadline: float) -> bytes:
        """The answer's decompressed bytes, at most :data:`MAX_ANSWER_BYTES`, within the request's deadline."""
        import httpx2

        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise SystemRefused(f'system "{self._name}": an answer of more than {MAX_ANSWER_BYTES} bytes')
            if time.monotonic() > deadline:
                raise httpx2.ReadTimeout("the answer took longer than the timeout")
            chunks.append(chunk)
        return b"".join(chunks)

    def lookup(self, email: str, key: str = "") -> Found:
        answer = self._post("lookup", email, key or _fresh_key())
        found = answer.get("found")
        if not isinstance(found, bool):
            raise SystemRefused(f'system "{self._name}": the lookup answer has no "found": true/false')
        hold = answer.get("hold")
        return Found(found, self._hold(hold) if found and hold is not None else None)

    def _hold(self, hold: object) -> SystemHold:
        """``{"until": "2027-03-01", "ground": "…", "kind": "block"}``: until a date or time (ISO 8601, UTC when it
        has no offset), on a ground, shown as the system wrote it (bounded, one line)."""
        refused = SystemRefused(f'system "{self._name}": the lookup\'s "hold" needs "ground" text, "until" as an '
                                'ISO date, and "kind" block or retain')
        if not isinstance(hold, dict) or not isinstance(hold.get("ground"), str) or not hold["ground"].strip():
            raise refused
        kind, until = hold.get("kind", "block"), hold.get("until")
        if kind not in ("block", "retain") or not (until is None or isinstance(until, str)):
            raise refused
        moment: datetime | date | None = None
        try:
            if until and len(until) == 10:
                moment = date.fromisoformat(until)  # a day: its end where the operator is
            elif until:
                parsed = datetime.fromisoformat(until)
                moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            raise refused from None
        if kind == "retain" and moment is None:
            raise refused
        if moment is not None and (moment if isinstance(moment, date) and not isinstance(moment, datetime)
                                   else moment.date()) > (datetime.now(UTC) + MAX_HOLD).date():
            raise refused  # no legal ground keeps data for longer; a far date is a mistake, not a hold
        return SystemHold(shown(hold["ground"], 500), moment, kind)

    def access(self, email: str, key: str = "") -> list[HeldRecord]:
        records = self._post("access", email, key or _fresh_key()).get("records", [])
        held: list[HeldRecord] = []
        if not isinstance(records, list):
            raise SystemRefused(f'system "{self._name}": the access answer\'s "records" is not a list')
        for record in records:
            fields = record.get("fields") if isinstance(record, dict) else None
            label = record.get("label") if isinstance(record, dict) else None
            if not isinstance(label, str) or not isinstance(fields, dict):
                raise SystemRefused(f'system "{self._name}": an access record without a label or fields')
            if not all(isinstance(v, str | int | float | bool) or v is None for v in fields.values()):
                raise SystemRefused(f'system "{self._name}": an access record with a value that is not text, a '
                                    "number or true/false")
            held.append(HeldRecord(shown(label, MAX_LABEL_CHARS), {
                shown(str(k), MAX_LABEL_CHARS): shown(str(v), MAX_VALUE_CHARS)
                for k, v in fields.items() if v is not None}))
        return held

    # before_commit: the receiver answers a retried key as the first time, so its first counts come back anyway.

    def update(self, email: str, changes: Changes, key: str, before_commit: BeforeCommit | None = None) -> Done:
        return self._act("update", email, key, changes)

    def optout(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        return self._act("optout", email, key)

    def withdraw(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        return self._act("withdraw", email, key)

    def erase(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        return self._act("erase", email, key)

    def _act(self, action: str, email: str, key: str, changes: Changes | None = None) -> Done:
        if self.read_only:
            raise SystemRefused(f'system "{self._name}" is read_only')
        answer = self._post(action, email, key, changes)
        counts = [answer.get(name, 0) for name in ("deleted", "updated")]
        deleted, updated = (c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else 0 for c in counts)
        return Done(deleted=deleted, updated=updated)

    def check(self) -> list[TableCheck]:
        """A lookup of an address no one has: the system answers, and its answer has the right shape."""
        self.lookup("dsr-mailbot-check@invalid", _fresh_key())
        return []

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


MAX_HOLD = timedelta(days=3653)  # ten years: the longest accounting duty a system may claim


def _fresh_key() -> str:
    import secrets

    return f"dsr-{secrets.token_hex(12)}"
