"""/healthz and /metrics of a real daemon ([daemon] metrics_listen) and, read from the store, of another process."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from dsr_mailbot.service.monitoring import monitoring_routes, stored_records
from dsr_mailbot.store.models import utcnow
from tests.harness import Bot, DaemonProcess, mail, wait_until
from tests.servers import Dovecot, SmtpServer, free_port

IVAN = "ivan.petrov@example.ru"
ANNA = "anna@example.kz"


def _monitored(bot: Bot, port: int) -> None:
    bot.write_config(extra=f'\n[daemon]\npoll_interval_seconds = 1\nmetrics_listen = "127.0.0.1:{port}"\n')


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_parse_and_match_the_store(bot: Bot) -> None:
    port = free_port()
    _monitored(bot, port)
    bot.add_user(IVAN, marketing_consent=True, surname="Петров")
    bot.add_user(ANNA, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    # A mixed letter (an update with an opt-out in its words) counts once for each intent.
    bot.account.append(mail(ANNA, "Personal data update", "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77\n\n"
                                                          "И прошу больше не присылать рекламу."))
    bot.account.append(mail("stranger@example.org", "Вопрос об обработке персональных данных", "Кому?"))
    daemon = DaemonProcess(bot)
    wait_until(lambda: len(bot.requests()) == 3 and all(r.state != "received" for r in bot.requests())
               and not [m for m in bot.outbox() if m.state == "queued"], what="three requests handled")
    daemon.wait_for_log("serving /healthz and /metrics")

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert daemon.stop() == 0

    samples = _samples(text)
    in_store = Counter((intent, r.state) for r in bot.requests() for intent in r.intents)
    by_metric = {dict(labels)["intent"] + "/" + dict(labels)["state"]: value
                 for (name, labels), value in samples.items() if name == "dsr_mailbot_requests"}
    assert by_metric == {f"{i}/{s}": float(n) for (i, s), n in in_store.items()}
    assert by_metric == {"optout/completed": 1.0, "update/review": 1.0, "optout/review": 1.0, "question/review": 1.0}
    outbox = Counter(m.state for m in bot.outbox())
    assert samples[("dsr_mailbot_replies_sent_total", ())] == outbox["sent"] == len(bot.smtp.messages)
    assert samples[("dsr_mailbot_replies_failed_total", ())] == outbox["failed"] == 0
    assert samples[("dsr_mailbot_outbox_depth", ())] == outbox["queued"] == 0
    overdue = sum(1 for r in bot.requests() if r.state in ("review", "awaiting_confirmation") and r.due_at < utcnow())
    assert samples[("dsr_mailbot_requests_overdue", ())] == overdue == 0
    assert samples[("dsr_mailbot_passes_total", ())] >= 1
    assert samples[("dsr_mailbot_server_up", (("server", "imap"),))] == 1
    assert samples[("dsr_mailbot_database_up", ())] == 1
    assert ("dsr_mailbot_scan_duration_seconds", ()) in samples
    assert ("dsr_mailbot_last_pass_timestamp_seconds", ()) in samples
    # No personal data, and no label that could hold some.
    assert IVAN not in text and "stranger" not in text and "Петров" not in text
    labels = {key for (_, pairs) in samples for key, _ in pairs}
    assert labels <= {"intent", "state", "server"}


def test_healthz_turns_503_when_dovecot_stops_in_the_daemon_and_in_the_console(
    own_dovecot: Dovecot, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    bot = Bot(tmp_path, own_dovecot.new_account(), smtp_server, f"sqlite:///{tmp_path / 'store.db'}")
    port = free_port()
    _monitored(bot, port)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("serving /healthz and /metrics")
    url = f"http://127.0.0.1:{port}/healthz"
    wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, what="a healthy daemon")
    # The console is another process: it reads what the daemon wrote to the store.
    console = TestClient(Starlette(routes=monitoring_routes(bot.store, stored_records(bot.store), utcnow)))
    wait_until(lambda: console.get("/healthz").status_code == 200, what="the daemon's status in the store")
    healthy = console.get("/healthz").json()
    assert healthy["servers"]["imap"]["state"] == "up" and healthy["last_pass_at"] is not None
    assert healthy["outbox_depth"] == 0

    own_dovecot.stop()

    wait_until(lambda: httpx.get(url, timeout=5).status_code == 503, what="503 from the daemon")
    failing = httpx.get(url, timeout=5).json()
    assert "imap: down" in failing["problems"] and failing["servers"]["imap"]["down_since"]
    wait_until(lambda: console.get("/healthz").status_code == 503, what="503 from the console")
    assert console.get("/healthz").json()["servers"]["imap"]["state"] == "down"
    metrics = _samples(console.get("/metrics").text)
    assert metrics[("dsr_mailbot_server_up", (("server", "imap"),))] == 0
    assert metrics[("dsr_mailbot_outages_total", (("server", "imap"),))] == 1

    own_dovecot.start()
    wait_until(lambda: httpx.get(url, timeout=5).status_code == 200, timeout=60, what="healthy again")
    reconnects = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    assert reconnects[("dsr_mailbot_idle_reconnects_total", ())] >= 1
    assert daemon.stop() == 0
    bot.close()
