"""HTTP systems: signed JSON POSTs to a real server on 127.0.0.1; the example receiver in contrib/ does each once."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsr_mailbot.errors import SystemRefused, SystemUnavailable
from dsr_mailbot.systems.http import HttpConnector, retry_after_seconds, signature, verify_signature
from tests.http_servers import ScriptedHttpServer
from tests.servers import free_port
from tests.systems.shop import running_receiver

SECRET = "correct horse battery staple"


# The signature, as pure functions.

def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"action":"optout"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET.encode(), "1700000000", body) == f"v1={expected}"


def test_a_receiver_refuses_a_stale_timestamp_a_changed_body_and_another_secret() -> None:
    body, now = b'{"action":"erase"}', 1_700_000_000.0
    header = signature(SECRET.encode(), "1700000000", body)
    assert verify_signature(SECRET.encode(), "1700000000", body, header, now + 300)
    assert not verify_signature(SECRET.encode(), "1700000000", body, header, now + 301)  # replayed later
    assert not verify_signature(SECRET.encode(), "1700000000", body, header, now - 301)
    assert not verify_signature(SECRET.encode(), "1700000000", body + b" ", header, now)
    assert not verify_signature(b"another secret", "1700000000", body, header, now)
    assert not verify_signature(SECRET.encode(), "soon", body, header, now)


def test_retry_after_is_read_as_seconds_or_as_a_date_and_never_parks_an_action_for_more_than_a_day() -> None:
    assert retry_after_seconds("120", 0) == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10
    assert retry_after_seconds("soon", 0) is None and retry_after_seconds(None, 0) is None
    assert retry_after_seconds("\u00b2", 0) is None  # a digit to str.isdigit, not to int()
    assert retry_after_seconds("9" * 400, 0) == 86_400
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT", 0) == 86_400


def test_a_timestamp_of_other_digits_is_refused_not_a_crash() -> None:
    body = b"{}"
    header = signature(SECRET.encode(), "1700000000", body)
    assert not verify_signature(SECRET.encode(), "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
                                body, header, 1_700_000_000.0)


# Against a scripted server: what each answer means.

@pytest.fixture
def server() -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer()
    server.start()
    yield server
    server.stop()


def connector_for(url: str) -> HttpConnector:
    return HttpConnector("Mailer", url, SECRET, timeout_seconds=5)


def test_each_action_is_a_signed_post_carrying_its_idempotency_key(server: ScriptedHttpServer) -> None:
    server.answer(200, {"updated": 1})
    connector = connector_for(server.url)
    done = connector.optout("pavel.k@example.com", key="dsr-a-17")

    assert done.updated == 1
    (request,) = server.requests
    assert request.headers["Idempotency-Key"] == "dsr-a-17"
    assert verify_signature(SECRET.encode(), request.headers["X-DSR-Timestamp"], request.body,
                            request.headers["X-DSR-Signature"], time.time())
    assert json.loads(request.body) == {"action": "optout", "id": "dsr-a-17", "email": "pavel.k@example.com",
                                        "changes": {}}
    connector.close()


@pytest.mark.parametrize(("status", "temporary"), [(500, True), (503, True), (408, True), (425, True), (429, True),
                                                   (400, False), (401, False), (404, False), (409, False)])
def test_a_5xx_and_408_425_429_are_retried_any_other_4xx_is_permanent(server: ScriptedHttpServer, status: int,
                                                                      temporary: bool) -> None:
    server.answer(status, {"error": "x"}, headers={"Retry-After": "30"})
    connector = connector_for(server.url)
    with pytest.raises(SystemUnavailable if temporary else SystemRefused) as failed:
        connector.erase("pavel.k@example.com", key="k")
    assert '"Mailer"' in str(failed.value) and str(status) in str(failed.value)
    if temporary:
        assert getattr(failed.value, "retry_after", None) == 30
    connector.close()


def test_a_refused_connection_or_a_timeout_is_temporary_and_the_url_is_not_shown() -> None:
    connector = HttpConnector("Mailer", f"http://127.0.0.1:{free_port()}/dsr?token=s3cret", SECRET)
    with pytest.raises(SystemUnavailable) as down:
        connector.optout("pavel.k@example.com", key="k")
    assert "s3cret" not in str(down.value) and "127.0.0.1" not in str(down.value)
    connector.close()


def test_answers_of_the_wrong_shape_are_refused_not_guessed(server: ScriptedHttpServer) -> None:
    connector = connector_for(server.url)
    server.answer(200, {"found": "yes"})
    with pytest.raises(SystemRefused, match="found"):
        connector.lookup("pavel.k@example.com")
    server.answer(200, {"records": [{"fields": {}}]})
    with pytest.raises(SystemRefused, match="label"):
        connector.access("pavel.k@example.com")
    server.answer(200, {"records": [{"label": "CRM", "fields": {"phone": "+77011112233", "vip": True}}]})
    (record,) = connector.access("pavel.k@example.com")
    assert (record.label, record.fields) == ("CRM", {"phone": "+77011112233", "vip": "True"})
    connector.close()


@pytest.mark.parametrize("hold", [
    {"ground": "order"} | {"until": "next week"},
    {"ground": "", "until": "2027-03-01"},
    {"ground": "order", "until": "2027-03-01", "kind": "forever"},
    {"ground": "order", "kind": "retain"},  # kept on another ground: only until a date
    {"ground": "order", "until": 20270301},
    {"ground": "order", "until": "9999-12-31T23:59:59-05:00", "kind": "retain"},  # no ground keeps data so long
    "order 77",
])
def test_a_lookups_hold_of_the_wrong_shape_is_refused(server: ScriptedHttpServer, hold: object) -> None:
    connector = connector_for(server.url)
    server.answer(200, {"found": True, "hold": hold})
    with pytest.raises(SystemRefused, match="hold"):
        connector.lookup("pavel.k@example.com")
    connector.close()


def test_a_lookups_hold_is_read_as_a_day_or_a_moment_and_its_ground_on_one_bounded_line(
        server: ScriptedHttpServer) -> None:
    from datetime import UTC, date, datetime

    connector = connector_for(server.url)
    server.answer(200, {"found": True, "hold": {"ground": "order\u2028 77" + "x" * 900, "until": "2027-03-01"}})
    found = connector.lookup("pavel.k@example.com")
    assert found and found.hold is not None and found.hold.until == date(2027, 3, 1) and found.hold.kind == "block"
    assert found.hold.ground.startswith("order  77") and len(found.hold.ground) == 500
    server.answer(200, {"found": True, "hold": {"ground": "x", "until": "2027-03-01T10:00:00", "kind": "retain"}})
    held = connector.lookup("pavel.k@example.com").hold
    assert held is not None and held.until == datetime(2027, 3, 1, 10, tzinfo=UTC) and held.kind == "retain"
    server.answer(200, {"found": False, "hold": {"ground": "ignored"}})  # nobody there: nothing held
    assert connector.lookup("nobody@example.com").hold is None
    connector.close()


def test_a_compressed_answer_is_cut_at_its_limit_and_deep_json_is_refused(server: ScriptedHttpServer) -> None:
    import gzip

    connector = connector_for(server.url)
    bomb = gzip.compress(b"0" * (50 * 1024 * 1024))  # 50 MB in about 50 KB
    server.answer(200, None, {"Content-Encoding": "gzip"}, raw=bomb)
    with pytest.raises(SystemRefused, match="more than"):
        connector.access("pavel.k@example.com")
    server.answer(200, None, raw=b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(SystemRefused, match="not JSON"):
        connector.access("pavel.k@example.com")
    connector.close()


# The example receiver in contrib/, as a real process.

@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with running_receiver(tmp_path, SECRET) as running:
        yield running


def test_the_example_receiver_does_each_idempotency_keys_action_once(receiver: tuple[str, Path]) -> None:
    url, database = receiver
    connector = connector_for(url)
    assert connector.lookup("pavel.k@example.com") and not connector.lookup("nobody@example.com")
    (record,) = connector.access("pavel.k@example.com")
    assert record.fields == {"email": "pavel.k@example.com", "name": "Павел", "subscribed": "yes"}

    first = connector.erase("pavel.k@example.com", key="dsr-e-1")
    with sqlite3.connect(database) as db:  # the person comes back (a re-import): a retry must not erase again
        db.execute("INSERT INTO subscribers (email, name) VALUES ('pavel.k@example.com', 'again')")
    again = connector.erase("pavel.k@example.com", key="dsr-e-1")

    assert first.deleted == again.deleted == 1  # answered as the first time ...
    with sqlite3.connect(database) as db:  # ... and not done again
        assert db.execute("SELECT name FROM subscribers ORDER BY name").fetchall() == [("again",), ("Анна",)]
        assert db.execute("SELECT count(*) FROM seen_keys WHERE key = 'dsr-e-1'").fetchone() == (1,)
    assert connector.erase("pavel.k@example.com", key="dsr-e-2").deleted == 1  # a new action is done
    connector.close()


def test_the_example_receiver_refuses_a_wrong_signature(receiver: tuple[str, Path]) -> None:
    url, database = receiver
    forged = HttpConnector("Mailer", url, "not the secret")
    with pytest.raises(SystemRefused, match="401"):
        forged.erase("anna@example.kz", key="dsr-e-9")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM subscribers").fetchone() == (2,)
    forged.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method="POST"),
                                    timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def signed(body: bytes, key: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {"Content-Type": "application/json", "Idempotency-Key": key, "X-DSR-Timestamp": timestamp,
            "X-DSR-Signature": signature(SECRET.encode(), timestamp, body)}


def test_a_replayed_action_cannot_spend_the_key_of_a_later_one(receiver: tuple[str, Path]) -> None:
    url, database = receiver
    optout = json.dumps({"action": "optout", "id": "dsr-o-1", "email": "anna@example.kz", "changes": {}}).encode()
    assert post(url, optout, signed(optout, "dsr-o-1")) == 200
    # Captured and replayed within the window under the key the bot will give a later erasure: the header is not
    # signed, so it must be the signed body's id.
    assert post(url, optout, signed(optout, "dsr-e-2")) == 400
    other = json.dumps({"action": "erase", "id": "dsr-o-1", "email": "anna@example.kz", "changes": {}}).encode()
    assert post(url, other, signed(other, "dsr-o-1")) == 409  # a key already spent on another action
    erase = json.dumps({"action": "erase", "id": "dsr-e-2", "email": "anna@example.kz", "changes": {}}).encode()
    assert post(url, erase, signed(erase, "dsr-e-2")) == 200
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM subscribers WHERE email = 'anna@example.kz'").fetchone() == (0,)


@pytest.mark.parametrize("length", ["-1", "abc", ""])
def test_the_receiver_answers_a_malformed_length_without_reading_on(receiver: tuple[str, Path], length: str) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(receiver[0])
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        length_line = f"Content-Length: {length}\r\n" if length else ""
        conn.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: x\r\n{length_line}\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.0 400")
