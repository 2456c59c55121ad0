"""The console over real HTTP (uvicorn on loopback): the contract's routes, sessions, CSRF, throttling, headers."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest

from dsr_mailbot.store.acts import Act, write_act
from dsr_mailbot.store.models import Request, utcnow
from dsr_mailbot.web.auth import FREE_FAILURES
from dsr_mailbot.web.pages import PAGE_SIZE
from dsr_mailbot.web.security import CONTENT_SECURITY_POLICY
from tests.harness import Bot, mail, request_in_review
from tests.web.console import (
    LOGIN,
    PASSWORD,
    csrf_of,
    operators_config,
    reveal,
    serve_console,
    signed_in,
    with_operator,
)

IVAN = "ivan.petrov@example.ru"
SCRIPT_SUBJECT = "Personal data update <script>alert(1)</script>"
PAGES = ("/queue", "/requests/1", "/deadlines", "/acts", "/acts/1", "/report")


def _review(bot: Bot, subject: str = SCRIPT_SUBJECT) -> int:
    bot.add_user(IVAN, phone="+77010000000", surname="Петров")
    return request_in_review(bot, IVAN, subject)


@pytest.fixture
def console(bot: Bot) -> Bot:
    with_operator(bot)
    return bot


def test_every_page_sends_a_visitor_without_a_session_to_login(console: Bot) -> None:
    _review(console)
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url, follow_redirects=False)
        for path in PAGES:
            answer = client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path
        for path in ("/requests/1/approve", "/requests/1/reveal", "/logout"):
            assert client.post(path, data={"csrf_token": "x"}).headers["location"] == "/login", path
        # A made-up session cookie is no session.
        forged = httpx.Client(base_url=served.url, follow_redirects=False)
        forged.cookies.set("dsr_session", "forged")
        assert forged.get("/queue").status_code == 303
        form = client.get("/login")
        assert form.status_code == 200 and 'name="username"' in form.text and 'name="password"' in form.text
    assert [r.state for r in console.requests()] == ["review"]


def test_signing_in_sets_a_secure_httponly_strict_expiring_cookie(console: Bot) -> None:
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url)
        form = client.get("/login")
        client.cookies.set("dsr_login_csrf", form.cookies["dsr_login_csrf"])
        answer = client.post("/login", data={"username": LOGIN, "password": PASSWORD, "csrf_token": csrf_of(form.text)})
        assert (answer.status_code, answer.headers["location"]) == (303, "/queue")
        [session_cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("dsr_session=")]
        flags = {part.strip().split("=")[0].lower() for part in session_cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite", "max-age", "path"} <= flags
        assert "samesite=strict" in session_cookie.lower()
        assert int(re.search(r"Max-Age=(\d+)", session_cookie, re.I).group(1)) <= 8 * 3600  # type: ignore[union-attr]


def test_the_login_form_without_its_token_is_refused(console: Bot) -> None:
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url)
        answer = client.post("/login", data={"username": LOGIN, "password": PASSWORD})
        assert answer.status_code == 403 and "dsr_session" not in answer.headers.get("set-cookie", "")


def test_a_wrong_password_is_refused_then_throttled_even_when_right(console: Bot) -> None:
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url)

        def attempt(password: str) -> httpx.Response:
            form = client.get("/login")
            client.cookies.set("dsr_login_csrf", form.cookies["dsr_login_csrf"])
            return client.post("/login", data={"username": LOGIN, "password": password,
                                               "csrf_token": csrf_of(form.text)})

        refused = [attempt("guess").status_code for _ in range(FREE_FAILURES)]
        throttled = attempt(PASSWORD)
        assert refused == [401] * FREE_FAILURES
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert "dsr_session" not in throttled.headers.get("set-cookie", "")


def login_attempt(url: str, password: str, client_address: str, device: str | None = None) -> int:
    """One whole sign-in, from ``client_address`` as the proxy in front names it (X-Forwarded-For)."""
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": client_address}, timeout=60) as client:
        if device:
            client.cookies.set("dsr_device", device)
        form = client.get("/login")
        client.cookies.set("dsr_login_csrf", form.cookies["dsr_login_csrf"])
        answer = client.post("/login", data={"username": LOGIN, "password": password,
                                             "csrf_token": csrf_of(form.text)})
        return answer.status_code


def test_a_flood_of_concurrent_guesses_gets_a_handful_of_checks_and_cannot_lock_the_operator_out(
        console: Bot) -> None:
    from concurrent.futures import ThreadPoolExecutor

    frozen = utcnow()  # the console's time stands still: no lockout runs out during the flood
    with serve_console(console, clock=lambda: frozen) as served:
        with httpx.Client(base_url=served.url, headers={"X-Forwarded-For": "192.0.2.10"}) as her_browser:
            form = her_browser.get("/login")
            her_browser.cookies.set("dsr_login_csrf", form.cookies["dsr_login_csrf"])
            signed = her_browser.post("/login", data={"username": LOGIN, "password": PASSWORD,
                                                      "csrf_token": csrf_of(form.text)})
            device = signed.cookies["dsr_device"]  # her browser signed in before
        # 150 strangers at once, from as many addresses: each attempt is recorded before its check.
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(lambda n: login_attempt(served.url, f"guess {n}", f"203.0.113.{n % 250}"),
                                    range(150)))
        refused_after_a_check = answers.count(401)
        # A new browser of hers waits like a stranger's; the browser she signed in with before does not.
        new_browser = login_attempt(served.url, PASSWORD, "198.51.100.7")
        her_own = login_attempt(served.url, PASSWORD, "192.0.2.10", device)
    assert refused_after_a_check <= FREE_FAILURES and set(answers) <= {401, 429, 503}
    assert new_browser == 429
    assert her_own == 303


def test_an_unknown_host_is_refused_and_a_configured_one_is_served(bot: Bot) -> None:
    """DNS rebinding: a page on another name that resolves to 127.0.0.1 must read nothing."""
    with_operator(bot)
    text = bot.config_path.read_text(encoding="utf-8")
    bot.config_path.write_text(text.replace("[web]\n", '[web]\nallowed_hosts = ["dsr.smarthings.kz", "127.0.0.1"]\n',
                                            1), encoding="utf-8")
    with serve_console(bot) as served:
        client = httpx.Client(base_url=served.url)
        rebound = client.get("/login", headers={"Host": "attacker.example"})
        health = client.get("/healthz", headers={"Host": "attacker.example:8080"})
        public = client.get("/login", headers={"Host": "dsr.smarthings.kz"})
        loopback = client.get("/login")
    assert rebound.status_code == health.status_code == 400
    assert "csrf_token" not in rebound.text
    assert public.status_code == loopback.status_code == 200


def test_the_default_hosts_are_the_listen_address_and_localhost(console: Bot) -> None:
    assert set(console.config.web.allowed_hosts) == {"127.0.0.1", "localhost", "::1"}
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url)
        assert client.get("/login", headers={"Host": "localhost"}).status_code == 200
        assert client.get("/login", headers={"Host": "dsr.smarthings.kz"}).status_code == 400


def test_over_https_the_cookies_carry_the_host_prefix_and_only_those_are_read(console: Bot) -> None:
    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url, headers={"X-Forwarded-Proto": "https"})
        form = client.get("/login")
        assert "__Host-dsr_login_csrf" in form.cookies
        client.cookies.set("__Host-dsr_login_csrf", form.cookies["__Host-dsr_login_csrf"])
        answer = client.post("/login", data={"username": LOGIN, "password": PASSWORD,
                                             "csrf_token": csrf_of(form.text)})
        assert answer.status_code == 303
        cookies = answer.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("__Host-dsr_session="))
        assert "path=/" in session.lower() and "secure" in session.lower() and "domain" not in session.lower()
        token = answer.cookies["__Host-dsr_session"]
        planted = httpx.Client(base_url=served.url, headers={"X-Forwarded-Proto": "https"})
        planted.cookies.set("dsr_session", token)  # the name a sibling domain could set: not read over HTTPS
        assert planted.get("/queue").status_code == 303
        client.cookies.set("__Host-dsr_session", token)
        assert client.get("/queue").status_code == 200


def test_odd_paths_and_parameters_get_a_clear_answer_never_an_error(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        answers = {path: client.get(path) for path in (
            "/requests/²", "/requests/１", "/acts/u²", "/report?month=0001-01", "/report?month=9999-12",
            "/report?month=2026-13", f"/requests/{request_id}?done=<script>alert(1)</script>",
            f"/requests/{request_id}?done=Your+account+is+blocked")}
    statuses = {path: answer.status_code for path, answer in answers.items()}
    assert statuses["/requests/²"] == statuses["/requests/１"] == statuses["/acts/u²"] == 404
    assert statuses["/report?month=0001-01"] == statuses["/report?month=9999-12"] == 400
    assert statuses["/report?month=2026-13"] == 400
    for path, answer in answers.items():
        if "done=" in path:
            assert answer.status_code == 200 and "alert(1)" not in answer.text and "blocked" not in answer.text


def test_every_response_carries_the_strict_headers(console: Bot) -> None:
    _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        anonymous = httpx.Client(base_url=served.url)
        for answer in (client.get("/queue"), client.get("/requests/1"), client.get("/requests/999"),
                       anonymous.get("/login"), anonymous.get("/static/console.css"), anonymous.get("/healthz")):
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_a_subject_holding_a_script_is_shown_as_text(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        page = reveal(client, request_id, "subject").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<script" not in page  # the request page has no script at all


def test_the_subject_is_masked_until_revealed_and_the_reveal_is_audited(console: Bot) -> None:
    """People put their name, phone and new address in the subject."""
    request_id = _review(console, subject="Personal data update: Петров Иван, +7 701 999 88 77")
    with serve_console(console) as served:
        client = signed_in(served.url)
        masked = client.get(f"/requests/{request_id}").text
        shown = reveal(client, request_id, "subject").text
    assert "Петров" not in masked and "999 88 77" not in masked
    assert "Петров Иван, +7 701 999 88 77" in shown
    [revealed] = [e for e in console.events() if e.event == "field_revealed"]
    assert (revealed.request_id, revealed.detail) == (request_id, {"field": "subject"})


@pytest.mark.parametrize("decision", ["approve", "reject", "answer", "extend", "reveal"])
def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(console: Bot, decision: str) -> None:
    request_id = _review(console)
    events = len(console.events())
    with serve_console(console) as served:
        client = signed_in(served.url)
        missing = client.post(f"/requests/{request_id}/{decision}", data={"reason": "x", "text": "x",
                                                                           "field": "sender"})
        wrong = client.post(f"/requests/{request_id}/{decision}", data={"reason": "x", "text": "x",
                                                                         "field": "sender", "csrf_token": "forged"})
        logout = client.post("/logout")
    assert missing.status_code == wrong.status_code == logout.status_code == 403
    assert IVAN not in missing.text
    assert [r.state for r in console.requests()] == ["review"] and len(console.events()) == events


def test_rejecting_in_the_console_replies_and_names_the_operator(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        token = csrf_of(client.get(f"/requests/{request_id}").text)
        answer = client.post(f"/requests/{request_id}/reject", data={"reason": "Укажите один номер.",
                                                                     "csrf_token": token})
        assert answer.status_code == 303
        shown = client.get(answer.headers["location"])
    assert "rejected" in shown.text and "The reply was sent." in shown.text
    assert "Укажите один номер." in console.reply_text(console.replies()[-1])
    [rejected] = [e for e in console.events() if e.event == "request_rejected"]
    assert rejected.actor == f"web:{LOGIN}" and "Укажите" not in str(rejected.detail)


def test_dismissing_in_the_console_closes_a_letter_that_is_no_request_without_a_reply(console: Bot) -> None:
    request_id = _review(console)
    sent_before = len(console.replies())
    with serve_console(console) as served:
        client = signed_in(served.url)
        page = client.get(f"/requests/{request_id}").text
        assert 'id="dismiss"' in page
        answer = client.post(f"/requests/{request_id}/dismiss", data={"csrf_token": csrf_of(page)})
        assert answer.status_code == 303
        closed = client.get(f"/requests/{request_id}").text
    assert [(r.state, r.reason) for r in console.requests()] == [("ignored", "not_a_request")]
    assert len(console.replies()) == sent_before and 'id="dismiss"' not in closed
    [event] = [e for e in console.events() if e.event == "request_ignored"]
    assert event.actor == f"web:{LOGIN}"


def test_a_decision_the_state_forbids_is_explained_not_done(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        token = csrf_of(client.get(f"/requests/{request_id}").text)
        answer = client.post(f"/requests/{request_id}/answer", data={"text": "Ответ", "csrf_token": token})
    assert answer.status_code == 409 and "Not possible" in answer.text
    assert [r.state for r in console.requests()] == ["review"]


def test_revealing_shows_the_value_once_and_audits_it(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        page = client.get(f"/requests/{request_id}").text
        assert IVAN not in page and "+77010000000" not in page and "Петров" not in page  # masked by default
        shown = client.post(f"/requests/{request_id}/reveal", data={"field": "user.phone",
                                                                    "csrf_token": csrf_of(page)})
        again = client.get(f"/requests/{request_id}").text
    assert shown.status_code == 200 and "+77010000000" in shown.text and "+77010000000" not in again
    [revealed] = [e for e in console.events() if e.event == "field_revealed"]
    assert (revealed.actor, revealed.request_id, revealed.detail) == (f"web:{LOGIN}", request_id,
                                                                      {"field": "user.phone"})


def test_opening_an_act_shows_it_and_audits_who_opened_it(console: Bot) -> None:
    acts_dir = console.config.policy.acts_dir
    write_act(acts_dir, Act(act_id="7", made_at="2026-11-20T10:00:00+00:00", system_name="shop",
                            subject_full_name="Петров Иван Иванович", subject_ref="ref-7",
                            categories=("email", "phone"), reason="withdrawal", request_id=7,
                            request_received_at="2026-11-19T10:00:00+00:00", method="deletion",
                            processed_messages_expunged=1, ordinary_messages_left_in_inbox=0, notice="sent"))
    with serve_console(console) as served:
        client = signed_in(served.url)
        listing = client.get("/acts").text
        act = client.get("/acts/7")
        missing = client.get("/acts/8")
    assert "Петров" not in listing and 'href="/acts/7"' in listing  # the list names nobody
    assert act.status_code == 200 and "Петров Иван Иванович" in act.text and 'src="/static/print.js"' in act.text
    assert missing.status_code == 404
    [opened] = [e for e in console.events() if e.event == "act_opened"]
    assert (opened.actor, opened.request_id, opened.detail) == (f"web:{LOGIN}", 7, {"act": "7"})


def test_each_operator_reads_the_console_in_their_language(bot: Bot) -> None:
    with_operator(bot, language="kk")
    with serve_console(bot) as served:
        queue = signed_in(served.url).get("/queue").text
        russian = httpx.Client(base_url=served.url).get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Тексеру кезегі" in queue and 'lang="kk"' in queue
    assert "Вход" in russian.text and 'lang="ru"' in russian.text


def test_the_report_and_deadlines_pages_show_the_store(console: Bot) -> None:
    request_id = _review(console, "Personal data update")
    with serve_console(console) as served:
        client = signed_in(served.url)
        month = console.requests()[0].received_at.strftime("%Y-%m")
        report = client.get(f"/report?month={month}").text
        odd = client.get("/report?month=<b>")
        deadlines = client.get("/deadlines").text
    assert "update" in report and "<svg" in report and 'class="intent-0"' in report
    assert odd.status_code == 400 and "<b>" not in odd.text
    assert "ru-152fz" in deadlines and "kz" in deadlines
    assert f"#{request_id}" in deadlines or "(0)" in deadlines


def test_the_console_needs_an_operator_to_start(bot: Bot, tmp_path: Path) -> None:
    result = bot.cli("web")
    assert result.returncode == 78 and "[[web.operators]]" in result.stderr


def test_contrib_web_unit_runs_the_console_hardened_like_the_daemon() -> None:
    from tests.harness import REPO

    daemon = (REPO / "contrib" / "dsr-mailbot.service").read_text(encoding="utf-8").splitlines()
    web = (REPO / "contrib" / "dsr-mailbot-web.service").read_text(encoding="utf-8").splitlines()
    hardening = [line for line in daemon[daemon.index("StateDirectory=dsr-mailbot"):] if line and "=" in line]
    assert len(hardening) > 20 and [line for line in hardening if line not in web] == []
    assert "ExecStart=/opt/dsr-mailbot/.venv/bin/dsr-mailbot -c /etc/dsr-mailbot/config.toml web" in web
    assert "RestartPreventExitStatus=78" in web and "User=dsr-mailbot" in web


def test_a_body_past_the_limit_is_refused_declared_or_not(console: Bot) -> None:
    from dsr_mailbot.web.security import MAX_FORM_BYTES

    def chunks() -> object:
        for _ in range(MAX_FORM_BYTES // 65536 + 2):
            yield b"a" * 65536

    with serve_console(console) as served:
        client = httpx.Client(base_url=served.url)
        declared = client.post("/login", content=b"username=" + b"a" * (MAX_FORM_BYTES + 1),
                               headers={"content-type": "application/x-www-form-urlencoded"})
        streamed = client.post("/login", content=chunks(),  # type: ignore[arg-type]
                               headers={"content-type": "application/x-www-form-urlencoded"})
        after = client.get("/login")
    assert declared.status_code in (400, 413) and streamed.status_code == 413
    assert after.status_code == 200  # the console goes on


def test_every_form_that_posts_carries_the_sessions_csrf_token(console: Bot) -> None:
    request_id = _review(console)
    with serve_console(console) as served:
        client = signed_in(served.url)
        pages = [client.get(path).text for path in (f"/requests/{request_id}", "/queue", "/deadlines", "/report")]
    token = csrf_of(pages[0])
    forms = [form for page in pages for form in re.findall(r"<form[^>]*>.*?</form>", page, re.S)]
    posting = [form for form in forms if 'method="post"' in form]
    # approve, reject, extend, a reveal per masked field, and sign-out on every page
    assert len(posting) >= 4 + 4
    assert all(f'name="csrf_token" value="{token}"' in form for form in posting)


def test_an_owners_unclear_reply_is_on_the_request_page_masked_until_revealed(console: Bot) -> None:
    console.write_config(trust='verification = "always"', extra=operators_config())
    console.add_user(IVAN, surname="Петров")
    console.account.append(mail(IVAN, "Personal data update", "Фамилия: Сидоров"))
    console.run()
    [challenge] = console.replies()
    mid = str(challenge["Message-ID"])
    console.account.append(mail(IVAN, f"Re: {challenge['Subject']}", "А имя тоже поменяйте: Пётр",
                                headers={"In-Reply-To": mid, "References": mid}))
    console.run()
    [update] = [r for r in console.requests() if r.kind == "update"]
    assert (update.state, update.reason) == ("review", "unclear_confirmation") and update.id is not None
    with serve_console(console) as served:
        client = signed_in(served.url)
        masked = client.get(f"/requests/{update.id}").text
        shown = reveal(client, update.id, "owner_reply").text
    assert "reply to the confirmation" in masked and "Пётр" not in masked
    assert "А имя тоже поменяйте: Пётр" in shown


def test_the_deadlines_page_shows_blocked_people_masked_with_their_ground_and_dates(console: Bot) -> None:
    console.add_user("ivan.petrov@example.ru", phone="+77011112233")
    assert console.cli("users", "hold", "ivan.petrov@example.ru", "--ground", "заказ № 1042 <b>не доставлен</b>",
                       "--until", "2027-03-01").returncode == 0
    with serve_console(console) as served:
        deadlines = signed_in(served.url).get("/deadlines").text
    assert "(1)" in deadlines and "ivan.petrov@example.ru" not in deadlines  # masked, as every address there
    assert "заказ № 1042 &lt;b&gt;не доставлен&lt;/b&gt;" in deadlines and "2027-03-01" in deadlines
    assert "ru-152fz (RU)" in deadlines and "kz (KZ)" in deadlines  # each profile's own calendar


def _open_requests(bot: Bot, due: list[timedelta], state: str = "review") -> list[int]:
    """Open requests straight into the store, each received ten days before its due date (``due``: from now)."""
    now = utcnow()
    with bot.store.transaction() as session:
        rows = [Request(message_ref=f"{state}{n}", source="s", uidvalidity=1, uid=n, kind="question",
                        intents=["question"], state=state, language="ru", received_at=now + d - timedelta(days=10),
                        due_at=now + d, subject_ref="-") for n, d in enumerate(due)]
        session.add_all(rows)
        session.flush()
        return [r.id or 0 for r in rows]


def _shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/requests/(\d+)">', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', html)
    return found.group(1) if found else None


def test_the_queue_shows_a_page_oldest_first_and_its_links_walk_the_rest_without_gap_or_repeat(console: Bot) -> None:
    # Due from 29.5 hours ago on, an hour apart: the first thirty are overdue; the ids are not the order.
    due = [timedelta(hours=h - 30, minutes=30) for h in range(PAGE_SIZE + 7)]
    oldest_first = list(reversed(_open_requests(console, list(reversed(due)))))
    with serve_console(console) as served:
        client = signed_in(served.url)
        first = client.get("/queue").text
        next_link = _link(first, "next")
        assert next_link is not None and _link(first, "prev") is None
        second = client.get(next_link).text
        previous_link = _link(second, "prev")
        assert previous_link is not None and _link(second, "next") is None
        again = client.get(previous_link).text
        odd = [client.get(f"/queue?{query}") for query in ("after=x", "before=1-", "after=1-2&before=1-2",
                                                            "after=" + "9" * 30 + "-1")]
    assert _shown(first) == oldest_first[:PAGE_SIZE] and _shown(second) == oldest_first[PAGE_SIZE:]
    assert _shown(again) == _shown(first)
    for page in (first, second):  # the counts are the whole queue's, on every page
        assert f"{PAGE_SIZE + 7} waiting, 30 of them overdue." in page
    assert [answer.status_code for answer in odd] == [400] * 4
    assert all("This page link is not valid" in answer.text for answer in odd)


def test_the_deadlines_page_lists_the_most_overdue_first_a_page_at_a_time_with_exact_counts(console: Bot) -> None:
    late = _open_requests(console, [timedelta(hours=-h) for h in range(PAGE_SIZE - 10, 0, -1)])  # most late first
    soon = _open_requests(console, [timedelta(hours=1, minutes=m) for m in range(30)], state="awaiting_confirmation")
    with serve_console(console) as served:
        client = signed_in(served.url)
        first = client.get("/deadlines").text
        next_link = _link(first, "next")
        assert next_link is not None
        second = client.get(next_link).text
    assert _shown(first) == late + soon[:10] and _shown(second) == soon[10:]
    for page in (first, second):
        assert f"Late ({len(late)})" in page and f"Due within 2 working days ({len(soon)})" in page
    assert "On the other pages." in second and _link(second, "next") is None


def test_the_queue_narrows_to_an_intent_a_state_a_language_or_the_overdue_and_its_links_keep_them(
        console: Bot) -> None:
    late = _open_requests(console, [timedelta(hours=-h) for h in range(1, 4)])  # three questions, overdue, ru
    waiting = _open_requests(console, [timedelta(days=3)] * (PAGE_SIZE + 2), state="awaiting_confirmation")
    with console.store.transaction() as session:
        for request_id in waiting[:PAGE_SIZE + 1]:
            row = session.get(Request, request_id)
            assert row is not None
            row.kind, row.intents, row.language = "access", ["access"], "kk"
            session.add(row)
    with serve_console(console) as served:
        client = signed_in(served.url)
        overdue = client.get("/queue?overdue=1").text
        questions = client.get("/queue?intent=question").text
        kazakh_access = client.get("/queue?intent=access&language=kk&state=awaiting_confirmation").text
        escaped = _link(kazakh_access, "next")
        assert escaped is not None
        next_link = html.unescape(escaped)
        assert "&intent=access&state=awaiting_confirmation&language=kk" in next_link
        rest = client.get(next_link).text
        wrong = [client.get(f"/queue?{query}").status_code for query in
                 ("intent=confirm", "state=completed", "language=de", "overdue=yes")]
    oldest_first = list(reversed(late))
    assert _shown(overdue) == oldest_first and "3 waiting, 3 of them overdue." in overdue
    assert _shown(questions) == [*oldest_first, waiting[-1]]
    assert _shown(kazakh_access) + _shown(rest) == waiting[:PAGE_SIZE + 1]
    assert f"{PAGE_SIZE + 1} waiting, 0 of them overdue." in rest  # the counts are the narrowed queue's
    assert wrong == [400] * 4


@pytest.mark.parametrize(("query", "where"), [("12", "/requests/12"), ("№ 12", "/requests/12"),
                                               ("#7", "/requests/7"), ("DSR-7-o-1790000000-abcdef", "/requests/7")])
def test_a_request_is_found_by_its_number_or_the_reference_in_its_reply(console: Bot, query: str,
                                                                       where: str) -> None:
    with serve_console(console) as served:
        client = signed_in(served.url)
        found = client.get("/search", params={"q": query}, follow_redirects=False)
        nothing = client.get("/search", params={"q": "Иван"}, follow_redirects=False)
    assert (found.status_code, found.headers["location"]) == (303, where)
    assert nothing.status_code == 404
