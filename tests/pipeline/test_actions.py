"""The data map's actions: carried out after the decision, retried while a system is down, once, never lost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import select as core_select
from sqlmodel import select

from dsr_mailbot.config import load_config
from dsr_mailbot.errors import ConfigError, MappingError
from dsr_mailbot.pipeline import Services
from dsr_mailbot.pipeline.actions import retry_delay, run_actions
from dsr_mailbot.service.app import build_services
from dsr_mailbot.store.database import make_engine
from dsr_mailbot.store.models import AuditEvent, Request, SystemAction, utcnow
from dsr_mailbot.systems.protocol import Done
from tests.http_servers import ScriptedHttpServer
from tests.servers import free_port
from tests.systems.shop import B_USER, NEWSLETTER, build_shop, maildir_config

PAVEL = "pavel.k@example.com"
SECRET = "mailer secret"


def test_retries_back_off_from_half_a_minute_to_an_hour_and_wait_at_least_what_the_system_asks() -> None:
    assert retry_delay(1, None, draw=0.0) == timedelta(seconds=15)
    assert retry_delay(1, None, draw=1.0) == timedelta(seconds=30)
    assert retry_delay(20, None, draw=1.0) == timedelta(hours=1)
    assert retry_delay(1, 600.0, draw=1.0) == timedelta(seconds=600)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    build_shop(engine)
    yield url, engine
    engine.dispose()


@pytest.fixture
def mailer() -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer()
    server.start()
    yield server
    server.stop()


def setup(tmp_path: Path, db_url: str, shop_url: str, mailer_url: str, match: str = "EMAIL",
          give_up_hours: int = 24) -> Path:
    return maildir_config(tmp_path, db_url, f"""
[secrets]
key = "{'ab' * 32}"
[[systems]]
kind = "sql"
name = "Shop"
url = "{shop_url}"
give_up_after_hours = {give_up_hours}
[[systems.tables]]
table = "b_user"
match = "{match}"
fields = {{ email = "EMAIL", marketing_consent = "UF_NEWS" }}
erase = "delete"
[[systems.tables]]
table = "newsletter"
match = "ADDR"
fields = {{ marketing_consent = "ACTIVE" }}
erase = "delete"
[[systems]]
kind = "http"
name = "Mailer"
url = "{mailer_url}"
secret_env = "MAILER_SECRET"
give_up_after_hours = {give_up_hours}
""")


def services_for(path: Path, clock: Clock) -> Services:
    os.environ["MAILER_SECRET"] = SECRET
    services = build_services(load_config(path))
    services.clock = clock
    return services


def queue(services: Services, action: str, systems: tuple[str, ...] = ("Shop", "Mailer"),
          due: datetime | None = None) -> int:
    """A decided request and its actions, as the decision's transaction writes them."""
    now = services.clock()
    with services.store.transaction() as session:
        request = Request(message_ref=f"r{action}", source="x", uidvalidity=1, uid=1, kind=action, intents=[action],
                          state="received", language="ru", received_at=now, due_at=now,
                          subject_ref=services.keyring.subject_ref(PAVEL))
        session.add(request)
        session.flush()
        assert request.id is not None
        for system in systems:
            session.add(SystemAction(request_id=request.id, system=system, action=action, due_at=due or now,
                                     next_try_at=due or now, payload={"email": PAVEL}))
        return request.id


def actions(services: Services) -> dict[str, SystemAction]:
    with services.store.transaction() as session:
        return {row.system: row for row in session.exec(select(SystemAction)).all()}


def test_a_due_action_is_done_once_its_payload_forgotten_and_its_counts_kept(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), Clock())
    mailer.answer(200, {"updated": 1}, always=True)
    request_id = queue(services, "optout")

    run = run_actions(services)

    assert (run.done, run.failed, run.retried) == (2, 0, 0)
    done = actions(services)
    assert {row.state for row in done.values()} == {"done"} and all(row.payload == {} for row in done.values())
    assert done["Shop"].result["updated"] == 2 and done["Mailer"].result["updated"] == 1
    with engine.connect() as conn:
        assert conn.execute(core_select(B_USER.c.UF_NEWS).where(B_USER.c.ID == 1)).scalar() in (False, 0)
        assert conn.execute(core_select(NEWSLETTER.c.ACTIVE).where(NEWSLETTER.c.ID == 1)).scalar() in (False, 0)
    with services.store.transaction() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.event == "system_action_done")).all()
    assert {e.detail["system"] for e in events} == {"Shop", "Mailer"} and all(e.request_id == request_id
                                                                             for e in events)
    assert PAVEL not in str([e.detail for e in events])
    assert run_actions(services).done == 0 and len(mailer.requests) == 1  # done is done


def test_a_system_down_waits_with_backoff_the_others_go_on_and_it_is_done_when_back(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    clock = Clock()
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), clock)
    mailer.answer(503, {}, {"Retry-After": "120"})
    queue(services, "optout")

    run = run_actions(services)

    assert (run.done, run.retried, run.unavailable) == (1, 1, {"Mailer"})
    waiting = actions(services)["Mailer"]
    assert waiting.state == "pending" and waiting.last_error == "SystemUnavailable 503"
    assert waiting.next_try_at >= clock.now + timedelta(seconds=120) and waiting.payload == {"email": PAVEL}
    assert run_actions(services).done == 0  # not before its time
    clock.now += timedelta(seconds=121)
    mailer.answer(200, {"updated": 1})
    assert run_actions(services).done == 1 and actions(services)["Mailer"].state == "done"
    assert [r.headers["Idempotency-Key"] for r in mailer.requests] == [waiting.key, waiting.key]


def test_a_refusal_or_a_system_down_past_its_give_up_sends_the_request_to_review_naming_it(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    clock = Clock()
    down = f"http://127.0.0.1:{free_port()}/dsr"
    services = services_for(setup(tmp_path, db_url, shop_url, down, give_up_hours=2), clock)
    request_id = queue(services, "optout", systems=("Mailer",))

    assert run_actions(services).retried == 1
    clock.now += timedelta(hours=2, minutes=1)
    assert run_actions(services).failed == 1

    failed = actions(services)["Mailer"]
    # Kept while its request waits in review, for an operator's approval to try it again as it was.
    assert (failed.state, failed.payload, failed.last_error) == ("failed", {"email": PAVEL}, "SystemUnavailable")
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        assert request is not None and (request.state, request.reason) == ("review", "system_unavailable:Mailer")

    refused = services_for(setup(tmp_path / "b", db_url, shop_url, mailer.url), clock)
    mailer.answer(404, {})
    refused_id = queue(refused, "erase", systems=("Mailer",))
    assert run_actions(refused).failed == 1
    with refused.store.transaction() as session:
        request = session.get(Request, refused_id)
        assert request is not None and (request.state, request.reason) == ("review", "system_refused:Mailer")


def test_a_wrong_mapping_stops_before_any_system_is_changed(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url, match="E_MAIL"), Clock())
    queue(services, "erase", systems=("Mailer", "Shop"))  # the HTTP system's action would come first

    with pytest.raises(MappingError, match='"Shop" → table b_user: no column E_MAIL'):
        run_actions(services)

    assert mailer.requests == [] and {row.state for row in actions(services).values()} == {"pending"}
    with engine.connect() as conn:
        assert len(conn.execute(core_select(B_USER)).all()) == 3


def test_a_scheduled_erasure_waits_for_its_date(tmp_path: Path, db_url: str, shop: tuple[str, Engine],
                                                mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    clock = Clock()
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), clock)
    queue(services, "erase", systems=("Shop",), due=clock.now + timedelta(days=30))
    assert run_actions(services).done == 0
    clock.now += timedelta(days=30)
    assert run_actions(services).done == 1
    assert actions(services)["Shop"].result["deleted"] == 2  # b_user and the newsletter


KILLED_RUN = """
import os, sys
from dsr_mailbot.config import load_config
from dsr_mailbot.pipeline.actions import run_actions
from dsr_mailbot.service.app import build_services
print(run_actions(build_services(load_config(__import__("pathlib").Path(sys.argv[1])))).done)
"""


def test_kill_9_after_the_system_commits_re_runs_harmlessly_and_keeps_the_first_counts(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    path = setup(tmp_path, db_url, shop_url, mailer.url)
    services = services_for(path, Clock())
    queue(services, "erase", systems=("Shop",))
    env = {**os.environ, "MAILER_SECRET": SECRET}

    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], capture_output=True, text=True,
                            env={**env, "DSR_MAILBOT_TEST_CRASH_AT": "after_system_action"}, check=False)
    assert killed.returncode == -9
    with engine.connect() as conn:
        assert sorted(row.ID for row in conn.execute(core_select(B_USER.c.ID))) == [2, 3]  # the shop committed
    row = actions(services)["Shop"]
    assert row.state == "pending" and row.result["prepared"] and row.result["deleted"] == 2

    with services.store.transaction() as session:  # the dead worker's lease runs out
        leased = session.get(SystemAction, row.id)
        assert leased is not None
        leased.next_try_at = utcnow() - timedelta(seconds=1)
        session.add(leased)
    again = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], capture_output=True, text=True, env=env,
                           check=False)

    assert (again.returncode, again.stdout.strip()) == (0, "1"), again.stderr
    done = actions(services)["Shop"]
    assert done.state == "done" and done.result["deleted"] == 2 and "prepared" not in done.result  # the first counts
    assert done.attempts == 2


# What a review of the runner found.

def test_a_failure_leaves_a_closed_request_as_it_was_and_says_so_in_the_audit_trail(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), Clock())
    request_id = queue(services, "erase", systems=("Mailer",))
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        assert request is not None
        request.state, request.outcome = "completed", "erased"
        session.add(request)
    mailer.answer(404, {})

    assert run_actions(services).failed == 1
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        assert request is not None and (request.state, request.outcome) == ("completed", "erased")
        failed = session.exec(select(AuditEvent).where(AuditEvent.event == "system_action_failed")).one()
    assert failed.detail["system"] == "Mailer" and failed.detail["failure"] == "refused"


def test_actions_of_a_system_the_data_map_no_longer_lists_stop_the_run_and_stay(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    path = setup(tmp_path, db_url, shop_url, mailer.url)
    services = services_for(path, Clock())
    queue(services, "optout", systems=("Mailer",))
    path.write_text(path.read_text(encoding="utf-8").replace('name = "Mailer"', 'name = "Mailing tool"'),
                    encoding="utf-8")

    with pytest.raises(ConfigError, match="'Mailer', which the data map no longer lists"):
        run_actions(services_for(path, Clock()))
    left = actions(services)["Mailer"]
    assert (left.state, left.payload, left.attempts) == ("pending", {"email": PAVEL}, 0) and mailer.requests == []


def test_a_column_the_shop_renamed_since_the_last_run_stops_the_next_one(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), Clock())
    queue(services, "optout", systems=("Shop",))
    assert run_actions(services).done == 1  # the tables were read, and are kept by the process
    with engine.begin() as conn:
        conn.exec_driver_sql('ALTER TABLE newsletter RENAME COLUMN "ACTIVE" TO "SUBSCRIBED"')
    queue(services, "withdraw", systems=("Shop",))

    with pytest.raises(MappingError, match="no column ACTIVE"):
        run_actions(services)
    assert actions(services)["Shop"].state in ("pending", "done")


def test_a_claim_whose_lease_ran_out_is_recorded_by_the_worker_that_claimed_it_again(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    from dsr_mailbot.pipeline import actions as runner

    shop_url, _engine = shop
    clock = Clock()
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), clock)
    queue(services, "optout", systems=("Mailer",))
    action_id = actions(services)["Mailer"].id
    assert action_id is not None
    slow = runner._claim(services, action_id)
    clock.now += runner.LEASE + timedelta(seconds=1)
    again = runner._claim(services, action_id)
    assert slow is not None and again is not None and again.attempts == slow.attempts + 1

    runner._fail(services, slow, "refused", "system_refused:Mailer", RuntimeError())  # the slow one, late
    assert actions(services)["Mailer"].state == "pending"  # not its to record any more
    runner._done(services, again, Done(updated=1), {})
    assert actions(services)["Mailer"].state == "done"


def test_counts_of_an_attempt_that_did_something_replace_those_of_one_that_rolled_back(
        tmp_path: Path, db_url: str, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = shop
    services = services_for(setup(tmp_path, db_url, shop_url, mailer.url), Clock())
    queue(services, "erase", systems=("Shop",))
    with services.store.transaction() as session:  # an earlier attempt recorded 5, then the shop rolled back
        row = session.exec(select(SystemAction)).one()
        row.result = {"deleted": 5, "updated": 0, "tables": [], "prepared": True}
        session.add(row)

    assert run_actions(services).done == 1
    assert actions(services)["Shop"].result["deleted"] == 2
