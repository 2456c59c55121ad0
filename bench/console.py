"""The console and its monitoring endpoints on a large store, next to the floor of the same server.

Fills a store (SQLite, then PostgreSQL at 127.0.0.1:5432 as the tests use
it, a fresh database) with ``--requests`` requests — 2 % of them waiting
in review, the rest closed, a mixed letter now and then — and as many
outbox rows, serves the console with uvicorn on loopback, signs in, and
times ``--repeat`` GETs of each page over one keep-alive connection:

- **the floor**: a Starlette route on the same server returning a page of
  the queue's size with no database work (what the HTTP stack costs);
- ``/healthz``, ``/metrics`` (counted by the database at each scrape), the
  queue, one request page, the deadlines, the monthly report.

It prints the median and the 99th percentile of each, in milliseconds, and
each median's ratio to the floor's.

With ``--open N [N ...]`` it measures instead the pages whose size grows with
the work waiting (issue 21): for each N, a fresh store on each database with
N open requests (review, waiting for a confirmation, carrying out in the
data map's systems, a few just received; received over the last 60 days, so
that their due dates fall in the past and the future) beside as many closed
ones, and the median, 95th and 99th percentiles of ``/healthz`` (the
reference: the same server, one small query), the queue and the deadlines:
their first pages, and a page halfway down each (its link made from the
row there), which costs what the first does.

Run from the repository root:  .venv/bin/python -m bench.console [--requests 10000] [--repeat 50]
                               .venv/bin/python -m bench.console --open 10000 100000 [--repeat 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import httpx2 as httpx
import uvicorn
from sqlalchemy import create_engine, func, insert, text
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse
from starlette.routing import Route

from dsr_mailbot.config import PolicyConfig, load_config
from dsr_mailbot.service.app import build_services
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import OPEN_STATES, OutboxMessage, Request, utcnow
from dsr_mailbot.store.paging import Key, Ordered
from dsr_mailbot.web.app import create_app
from dsr_mailbot.web.pages import QUEUED
from tests.servers import free_port, wait_for_port
from tests.web.console import csrf_of, operators_config, signed_in

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INTENTS = ("update", "withdraw", "optout", "access", "question")


def fill(store: Store, count: int, seed: int = 7) -> int:
    """``count`` requests and as many outbox rows, in a few large INSERTs; returns a request id in review."""
    rng = random.Random(seed)
    now = utcnow()
    requests, outbox = [], []
    for n in range(count):
        received = now - timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        waiting = n % 50 == 0
        kinds = [rng.choice(INTENTS)] + (["optout"] if n % 7 == 0 else [])
        requests.append({
            "message_ref": f"{n:064x}", "message_id": f"<m{n}@example.kz>", "source": "bench", "uidvalidity": 1,
            "uid": n + 1, "kind": kinds[0], "intents": kinds, "state": "review" if waiting else "completed",
            "outcome": None if waiting else "applied", "reason": "names_another_user" if waiting else None,
            "language": rng.choice(("ru", "kk", "en")), "received_at": received,
            "due_at": received + timedelta(days=rng.randint(0, 10)), "subject_ref": f"ref{n % 3000}",
            "completed_at": None if waiting else received + timedelta(hours=3),
            "reply_address": f"user{n}@example.kz" if waiting else None,
            "letter_subject": "Personal data update" if waiting else None,
            "letter_text": "Фамилия: Сидоров" if waiting else None,
            "intent": {"changes": {"surname": "Сидоров"}, "problems": []} if waiting else {},
            "authenticated": False, "attempts": 1,
        })
        outbox.append({"request_id": None, "purpose": "reply", "message_id": f"<r{n}@smarthings.kz>",
                       "recipient": f"user{n}@example.kz", "data": b"x" * 200, "state": "sent", "attempts": 1,
                       "created_at": received, "for_verified": False, "sent_at": received})
    with store.engine.begin() as connection:
        for start in range(0, count, 2000):
            connection.execute(insert(Request), requests[start:start + 2000])
            connection.execute(insert(OutboxMessage), outbox[start:start + 2000])
        first = connection.execute(text("SELECT min(id) FROM requests WHERE state = 'review'")).scalar_one()
    return int(first)


def serve(app: Starlette) -> tuple[str, uvicorn.Server]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    assert wait_for_port(port)
    return f"http://127.0.0.1:{port}", server


@dataclass(frozen=True)
class Timing:
    median: float
    p95: float
    p99: float


def timed(get: Callable[[], httpx.Response], repeat: int) -> Timing:
    get()  # warm: templates compiled, connection open
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = get()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code in (200, 503), answer.status_code
    times.sort()

    def percentile(share: float) -> float:  # the nearest rank
        return times[min(len(times) - 1, round(share * (len(times) - 1)))]

    return Timing(statistics.median(times), percentile(0.95), percentile(0.99))


def measure(name: str, url: str, directory: Path, count: int, repeat: int) -> None:
    config_path = directory / "config.toml"
    (directory / "mail").mkdir(exist_ok=True)
    config_path.write_text(f'[maildir]\npath = "mail"\n[file_delivery]\ndirectory = "outbox"\n'
                           f'[database]\nurl = "{url}"\n' + operators_config("en", free_port()), encoding="utf-8")
    config = load_config(config_path)
    store = Store(url)
    store.init_schema()
    started = time.perf_counter()
    review_id = fill(store, count)
    filled = time.perf_counter() - started
    console_url, console = serve(create_app(build_services(config, store)))
    client = signed_in(console_url)
    queue_size = len(client.get("/queue").text)
    floor_page = "<p>x</p>" * (queue_size // 8)

    def floor_view(_request: HttpRequest) -> HTMLResponse:
        return HTMLResponse(floor_page)

    floor_url, floor = serve(Starlette(routes=[Route("/", floor_view)]))
    floor_client = httpx.Client(base_url=floor_url)
    month = utcnow().strftime("%Y-%m")
    pages = [("floor (no database)", lambda: floor_client.get("/")),
             ("/healthz", lambda: client.get("/healthz")),
             ("/metrics", lambda: client.get("/metrics")),
             ("/queue (first page)", lambda: client.get("/queue")),
             ("/requests/{id}", lambda: client.get(f"/requests/{review_id}")),
             ("/deadlines", lambda: client.get("/deadlines")),
             ("/report", lambda: client.get(f"/report?month={month}"))]
    assert csrf_of(client.get(f"/requests/{review_id}").text)
    print(f"\n{name}: {count:,} requests and outbox rows (filled in {filled:.1f} s); {repeat} GETs each")
    print(f"  {'page':<26}{'median ms':>10}{'p99 ms':>9}{'× floor':>9}")
    base = None
    for label, get in pages:
        timing = timed(get, repeat)
        base = base or timing.median
        print(f"  {label:<26}{timing.median:>10.1f}{timing.p99:>9.1f}{timing.median / base:>9.1f}")
    console.should_exit = floor.should_exit = True
    store.dispose()


# The open requests' states, as a busy shop's store might hold them.
STATE_MIX = ("review",) * 10 + ("awaiting_confirmation",) * 6 + ("carrying_out",) * 3 + ("received",)


def fill_open(store: Store, count: int, seed: int = 11) -> None:
    """``count`` open requests and as many closed ones, received over the last 60 days, in large INSERTs."""
    rng = random.Random(seed)
    now = utcnow()
    clock = PolicyConfig().clock  # the profiles of the bench's configuration, which sets no [policy]
    rows = []
    for n in range(2 * count):
        received = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        is_open = n % 2 == 0
        state = rng.choice(STATE_MIX) if is_open else "completed"
        kinds = [rng.choice(INTENTS)] + (["optout"] if n % 7 == 0 else [])
        rows.append({
            "message_ref": f"{n:064x}", "message_id": f"<m{n}@example.kz>", "source": "bench", "uidvalidity": 1,
            "uid": n + 1, "kind": kinds[0], "intents": kinds, "state": state,
            "outcome": None if is_open else "applied",
            "reason": ("names_another_user" if state == "review" else None),
            "language": rng.choice(("ru", "kk", "en")), "received_at": received,
            "due_at": clock.due_at(kinds[0], received), "subject_ref": f"ref{n % 3000}",
            "completed_at": None if is_open else received + timedelta(hours=3),
            "reply_address": f"user{n}@example.kz" if is_open else None,
            "letter_subject": "Personal data update" if is_open else None,
            "letter_text": "Фамилия: Сидоров" if is_open else None,
            "intent": {"changes": {"surname": "Сидоров"}, "problems": []} if is_open else {},
            "awaiting": "o" if state == "awaiting_confirmation" else None,
            "confirm_expires_at": now + timedelta(days=2) if state == "awaiting_confirmation" else None,
            "authenticated": False, "attempts": 1,
        })
    with store.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Request), rows[start:start + 5000])
    if store.dialect == "postgresql":  # as autovacuum would have, on a store that grew over weeks
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE requests"))


def halfway(store: Store, ordered: Ordered) -> str:
    """The link token of the row halfway down the queue (or the late requests): where a far page starts."""
    states = QUEUED if ordered == "received_at" else OPEN_STATES
    column = getattr(Request, ordered)
    with store.transaction() as session:
        query = select(Request).where(col(Request.state).in_(states), col(Request.kind) != "confirm")
        if ordered == "due_at":
            query = query.where(column < utcnow())
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        row = session.exec(query.order_by(column, col(Request.id)).offset(total // 2).limit(1)).one()
        return Key(getattr(row, ordered), row.id or 0).token


def measure_open(name: str, url: str, directory: Path, count: int, repeat: int) -> None:
    config_path = directory / "config.toml"
    (directory / "mail").mkdir(exist_ok=True)
    config_path.write_text(f'[maildir]\npath = "mail"\n[file_delivery]\ndirectory = "outbox"\n'
                           f'[database]\nurl = "{url}"\n' + operators_config("en", free_port()), encoding="utf-8")
    config = load_config(config_path)
    store = Store(url)
    store.init_schema()
    started = time.perf_counter()
    fill_open(store, count)
    filled = time.perf_counter() - started
    console_url, console = serve(create_app(build_services(config, store)))
    client = signed_in(console_url)
    client.timeout = httpx.Timeout(600)  # a page of every open request took over 20 s at 100,000
    pages = [("/healthz", "/healthz"), ("/queue", "/queue"), ("/deadlines", "/deadlines"),
             ("/queue, a page halfway down", f"/queue?after={halfway(store, 'received_at')}"),
             ("/deadlines, a page halfway", f"/deadlines?after={halfway(store, 'due_at')}")]
    print(f"\n{name}: {count:,} open requests and {count:,} closed (filled in {filled:.1f} s); {repeat} GETs each")
    print(f"  {'page':<30}{'rows':>6}{'KB':>8}{'median ms':>10}{'p95 ms':>9}{'p99 ms':>9}{'p95 × /healthz':>16}")
    reference = None
    for label, path in pages:
        body = client.get(path).text
        rows = body.count("<tr") - body.count("<thead><tr")
        timing = timed(partial(client.get, path), repeat)
        reference = reference or timing.p95
        print(f"  {label:<30}{rows:>6}{len(body) / 1024:>8.0f}{timing.median:>10.1f}{timing.p95:>9.1f}"
              f"{timing.p99:>9.1f}{timing.p95 / reference:>16.1f}")
    console.should_exit = True
    store.dispose()


def on_both(directory: Path, run: Callable[[str, str], None]) -> None:
    """``run(name, url)`` on SQLite, then on a fresh PostgreSQL database dropped afterwards."""
    (directory / "store.db").unlink(missing_ok=True)
    run("SQLite", f"sqlite:///{directory / 'store.db'}")
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    database = f"dsr_bench_console_{int(time.time())}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        run("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + f"/{database}")
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--open", type=int, nargs="+", metavar="N",
                        help="measure the queue and the deadlines with N open requests (e.g. 10000 100000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsr-bench-console-") as tmp:
        directory = Path(tmp)
        if not args.open:
            on_both(directory, partial(measure, directory=directory, count=args.requests, repeat=args.repeat))
        for count in args.open or ():
            on_both(directory, partial(measure_open, directory=directory, count=count, repeat=args.repeat))


if __name__ == "__main__":
    main()
