"""The daemon's health board and the /healthz verdict (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dsr_mailbot.service.health import HealthBoard, ServerHealth, StatusRecord, judge, watching

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _record(**changes: object) -> StatusRecord:
    base = StatusRecord(started_at=NOW - timedelta(hours=1), updated_at=NOW - timedelta(seconds=5),
                        poll_interval_seconds=60,
                        servers={"imap": ServerHealth(last_success=NOW), "smtp": ServerHealth(last_success=NOW),
                                 "database": ServerHealth(last_success=NOW)},
                        last_pass_at=NOW - timedelta(seconds=30), last_pass_seconds=0.2, last_scan_seconds=0.1,
                        passes=7)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_recent_pass_with_every_server_up_is_healthy() -> None:
    health = judge(_record(), NOW, None, 3)
    assert health.healthy and health.problems == ()
    assert health.body["status"] == "ok" and health.body["outbox_depth"] == 3
    assert {name: s["state"] for name, s in health.body["servers"].items()} == {
        "imap": "up", "smtp": "up", "database": "up"}


def test_a_server_down_fails_and_is_named() -> None:
    down = ServerHealth(last_success=NOW - timedelta(minutes=5), last_failure=NOW, down_since=NOW)
    health = judge(_record(servers={"imap": down}), NOW, None, 0)
    assert not health.healthy and health.problems == ("imap: down",)
    assert health.body["servers"]["imap"]["down_since"] == NOW.isoformat()


def test_the_database_not_answering_fails_whatever_the_daemon_said() -> None:
    health = judge(_record(), NOW, "database unavailable", None)
    assert not health.healthy and health.body["servers"]["database"]["state"] == "down"


def test_a_silent_or_stuck_daemon_fails() -> None:
    gone = judge(_record(updated_at=NOW - timedelta(minutes=10)), NOW, None, 0)
    stuck = judge(_record(last_pass_at=NOW - timedelta(minutes=10)), NOW, None, 0)
    never = judge(None, NOW, None, 0)
    assert "the daemon has not reported lately" in gone.problems
    assert stuck.problems == ("the daemon's last pass is old",)
    assert never.problems == ("no daemon has reported",)
    # Three poll intervals and a minute: a longer interval is given longer.
    assert judge(_record(poll_interval_seconds=600, last_pass_at=NOW - timedelta(minutes=10)), NOW, None, 0).healthy


def test_a_daemon_just_started_is_not_blamed_for_having_made_no_pass() -> None:
    starting = _record(started_at=NOW - timedelta(seconds=10), last_pass_at=None)
    assert judge(starting, NOW, None, 0).healthy
    assert not judge(replace(starting, started_at=NOW - timedelta(hours=1)), NOW, None, 0).healthy


def test_the_board_counts_outages_once_each_and_remembers_successes() -> None:
    board = HealthBoard(60)
    board.failed("mailbox")
    board.failed("mailbox")  # the same outage, retried
    assert board.snapshot().servers["imap"].state == "down"
    board.succeeded("mailbox")
    board.failed("mailbox")  # a second outage
    board.failed("worker")  # a bug is not a server
    board.reconnected()
    board.pass_done(0.5, 0.25)
    record = board.snapshot()
    assert record.outages == {"imap": 2}
    assert record.servers["imap"].state == "down" and record.servers["imap"].last_success is not None
    assert record.servers["smtp"].state == "unknown"  # never used yet
    assert (record.passes, record.idle_reconnects, record.last_scan_seconds) == (1, 1, 0.25)


def test_a_record_survives_its_trip_through_json() -> None:
    record = _record(outages={"smtp": 3}, idle_reconnects=2)
    assert StatusRecord.from_json(record.as_json()) == record


def test_the_worker_that_passed_last_speaks_for_the_mailbox() -> None:
    sender_only = _record(last_pass_at=None, updated_at=NOW)
    watcher = _record(updated_at=NOW - timedelta(seconds=20))
    assert watching([sender_only, watcher]) == watcher
    assert watching([sender_only]) == sender_only
    assert watching([]) is None


def test_the_board_says_when_a_server_goes_down_or_comes_up_not_at_every_retry() -> None:
    changes: list[dict[str, str]] = []
    board = HealthBoard(60, on_change=lambda: changes.append(
        {name: s.state for name, s in board.snapshot().servers.items()}))
    board.succeeded("mailbox")  # unknown -> up
    board.succeeded("mailbox")  # still up
    board.failed("mailbox")  # up -> down
    board.failed("mailbox")  # the same outage, retried
    board.failed("worker")  # not a server
    board.succeeded("mailbox")  # back
    assert [c["imap"] for c in changes] == ["up", "down", "up"]
