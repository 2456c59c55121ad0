"""A decided request's part in the data map: its actions written once, renewed after a failure, its reply held."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import select

from dsr_mailbot.config import load_config
from dsr_mailbot.lifecycle.base import Context
from dsr_mailbot.lifecycle.systems import Finish, person_of, write_actions
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.service.app import build_services
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import ActionState, Request, RequestState, SystemAction, utcnow
from tests.systems.shop import data_map_toml

PAVEL = "pavel.k@example.com"


def context(tmp_path: Path, read_only_mailer: bool = False) -> tuple[Context, Store]:
    os.environ.setdefault("MAILER_SECRET", "mailer secret")
    path = tmp_path / "config.toml"
    mailer = data_map_toml(f"sqlite:///{tmp_path / 'shop.db'}", "http://127.0.0.1:9/dsr")
    if read_only_mailer:
        mailer += "read_only = true\n"
    path.write_text(f'[maildir]\npath = "mail"\n[database]\nurl = "sqlite:///{tmp_path / "bot.db"}"\n'
                    f'[secrets]\nkey = "{"ab" * 32}"\n{mailer}', encoding="utf-8")
    (tmp_path / "mail").mkdir()
    config = load_config(path)
    store = config.open_store()
    store.init_schema()
    services = build_services(config, store)
    return services.context(), store


def a_request(store: Store) -> int:
    with store.transaction() as session:
        now = utcnow()
        request = Request(message_ref="m", source="x", uidvalidity=1, uid=1, kind="withdraw", intents=["withdraw"],
                          state=RequestState.RECEIVED, language="ru", received_at=now, due_at=now, subject_ref="s",
                          reply_address=PAVEL)
        session.add(request)
        session.flush()
        assert request.id is not None
        return request.id


def write(ctx: Context, store: Store, request_id: int, kinds: list[str], changes: dict[str, str] | None = None,
          erasure: datetime | None = None) -> bool:
    """The decision's transaction writing the actions of these intents."""
    with store.transaction() as session:
        request = session.get(Request, request_id)
        assert request is not None
        return write_actions(ctx, session, request, kinds, PAVEL, changes or {}, erasure)


def rows(store: Store) -> dict[tuple[str, str], SystemAction]:
    with store.transaction() as session:
        return {(r.system, r.action): r for r in session.exec(select(SystemAction))}


def test_a_withdrawal_asks_every_system_at_once_and_to_erase_at_its_date(tmp_path: Path) -> None:
    ctx, store = context(tmp_path)
    request_id = a_request(store)
    erasure = ctx.now + timedelta(days=30)
    # The reply waits for the withdrawals, not for the erasures.
    assert write(ctx, store, request_id, ["withdraw"], erasure=erasure)
    written = rows(store)
    assert sorted(written) == [("Mailer", "erase"), ("Mailer", "withdraw"), ("Shop", "erase"), ("Shop", "withdraw")]
    assert written["Shop", "erase"].next_try_at == erasure and written["Shop", "withdraw"].next_try_at == ctx.now
    assert written["Mailer", "withdraw"].payload == {"email": PAVEL}


def test_writing_again_keeps_what_is_done_and_renews_what_failed(tmp_path: Path) -> None:
    ctx, store = context(tmp_path)
    request_id = a_request(store)
    write(ctx, store, request_id, ["optout"])
    with store.transaction() as session:
        for row in session.exec(select(SystemAction)):
            row.state = ActionState.DONE if row.system == "Shop" else ActionState.FAILED
            row.payload, row.attempts, row.last_error = {}, 3, "SystemRefused 403"
            session.add(row)

    assert write(ctx, store, request_id, ["optout"])  # an operator approved it after the failure

    again = rows(store)
    assert len(again) == 2
    assert (again["Shop", "optout"].state, again["Shop", "optout"].attempts) == ("done", 3)
    mailer = again["Mailer", "optout"]
    assert (mailer.state, mailer.attempts, mailer.last_error, mailer.payload) == ("pending", 0, None, {"email": PAVEL})


def test_a_read_only_system_is_only_asked_for_access(tmp_path: Path) -> None:
    ctx, store = context(tmp_path, read_only_mailer=True)
    request_id = a_request(store)
    write(ctx, store, request_id, ["update", "optout", "access"], {"phone": "+77015554433"})

    assert sorted(rows(store)) == [("Mailer", "access"), ("Shop", "access"), ("Shop", "optout"), ("Shop", "update")]


def test_the_held_reply_survives_its_wait_exactly() -> None:
    held = Finish(template="several_applied", content=ReplyContent(
        kinds=("update", "access"), parts=("update_applied", "access_answer"), changes={"phone": "+77015554433"},
        unchanged=("email",), problems=(("surname", "invalid"),), erasure_due_at=utcnow(), held={"email": PAVEL},
        consents={"processing": True, "marketing": False}), recipient=PAVEL, state=RequestState.COMPLETED,
        reason=None, actor="bot", verified=True, old_address="old@example.com",
        audit={"changed": ["phone"], "unchanged": ["email"], "problems": ["surname:invalid"]})

    assert Finish.from_json(held.as_json()) == held


def test_someone_only_the_shops_systems_know_is_rebuilt_from_the_request_and_never_stored(tmp_path: Path) -> None:
    _ctx, store = context(tmp_path)
    request_id = a_request(store)
    with store.transaction() as session:
        request = session.get(Request, request_id)
        assert request is not None
        assert person_of(session, request) is None  # nobody knew the address
        request.intent = {"in_systems": True}
        person = person_of(session, request)
        assert person is not None and person.email == PAVEL and person.id is None
        assert person not in session
