"""The console end to end in headless Chromium (Debian's package, driven by Playwright), against the real
daemon, Dovecot, SMTP server and database: what an operator who never opened a terminal does.

Screenshots of the queue and of a request page are taken here; with DSR_SCREENSHOTS=DIR they are also
written to DIR (the README's come from ``DSR_SCREENSHOTS=docs/screenshots``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from dsr_mailbot.store.models import Request, utcnow
from dsr_mailbot.web.pages import PAGE_SIZE
from tests.conftest import need
from tests.harness import Bot, DaemonProcess, WebProcess, mail, wait_until
from tests.servers import free_port
from tests.web.console import LOGIN, PASSWORD, with_operator

IVAN = "ivan.petrov@example.ru"
ANNA = "anna@example.kz"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        need("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Stack:
    bot: Bot
    daemon: DaemonProcess
    web: WebProcess
    page: Page
    dialogs: list[str]

    def sign_in(self, password: str = PASSWORD) -> None:
        page = self.page
        page.goto(f"{self.web.url}/login")
        page.fill("input[name=username]", LOGIN)
        page.fill("input[name=password]", password)
        page.click("form.login button[type=submit]")

    def replies_to(self, address: str) -> list[str]:
        return [self.bot.reply_text(r) for r in self.bot.replies() if r["To"] == address]


def _stack(bot: Bot, chromium: Browser) -> Iterator[Stack]:
    port = free_port()
    with_operator(bot, port=port, extra="\n[daemon]\npoll_interval_seconds = 1\n")
    daemon = DaemonProcess(bot)
    web = WebProcess(bot, port)
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    yield Stack(bot, daemon, web, page, dialogs)
    context.close()
    # uvicorn stops gracefully on SIGTERM, then raises the signal again: systemd counts that a clean stop.
    assert web.stop() in (0, -signal.SIGTERM)
    assert daemon.stop() == 0


@pytest.fixture
def stack(bot: Bot, chromium: Browser) -> Iterator[Stack]:
    yield from _stack(bot, chromium)


@pytest.fixture
def stack_any_db(bot_any_db: Bot, chromium: Browser) -> Iterator[Stack]:
    yield from _stack(bot_any_db, chromium)


def _wait_for_review(bot: Bot, count: int) -> list[int]:
    wait_until(lambda: len(bot.requests()) == count and all(r.state == "review" for r in bot.requests()),
               what=f"{count} request(s) in review")
    return [r.id for r in bot.requests() if r.id is not None]


def _screenshot(page: Page, name: str, directory: Path) -> Path:
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    if target := os.environ.get("DSR_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def test_an_operator_signs_in_approves_a_request_and_the_reply_arrives(stack_any_db: Stack, tmp_path: Path) -> None:
    s = stack_any_db
    s.bot.add_user(IVAN, surname="Петров")
    s.bot.add_user(ANNA)
    # Naming another user's address sends a letter to review.
    s.bot.account.append(mail(IVAN, "Personal data update", f"Фамилия: Сидоров\nРаньше писал с {ANNA}"))
    s.bot.account.append(mail(ANNA, "Вопрос об обработке персональных данных", "Кому вы передаёте мой телефон?"))
    request_id, question_id = _wait_for_review(s.bot, 2)
    with s.bot.store.transaction() as session:  # the question is made late, as if it had waited a week
        question = session.get(Request, question_id)
        assert question is not None
        question.due_at = utcnow() - timedelta(days=1)
        session.add(question)
    page = s.page

    page.goto(f"{s.web.url}/queue")
    assert page.url.endswith("/login")
    s.sign_in()
    assert page.url.endswith("/queue")
    row = page.locator(f"tr[data-request='{request_id}']")
    assert "update" in row.inner_text() and "review" in row.inner_text()
    late = page.locator(f"tr[data-request='{question_id}']")
    assert late.get_attribute("class") == "overdue" and "overdue" in late.inner_text()
    assert row.get_attribute("class") == ""
    order = page.locator("tr[data-request]").evaluate_all(
        "rows => rows.map(r => r.dataset.request)")
    assert order == [str(request_id), str(question_id)]  # oldest first
    queue_png = _screenshot(page, "console-queue.png", tmp_path)
    page.click(f"a[href='/requests/{request_id}']")
    assert page.locator(".masked[data-field=sender]").inner_text() == "i***@example.ru"
    request_png = _screenshot(page, "console-request.png", tmp_path)
    replies_before = len(s.replies_to(IVAN))
    page.click("#approve button")

    assert "Done: the request is completed." in page.inner_text(".message.ok")
    wait_until(lambda: len(s.replies_to(IVAN)) == replies_before + 1, what="the reply at the SMTP server")
    user = s.bot.user(IVAN)
    assert user is not None and user.surname == "Сидоров"
    [completed] = [e for e in s.bot.events() if e.event == "request_completed"]
    assert completed.actor == f"web:{LOGIN}"
    assert queue_png.stat().st_size > 5000 and request_png.stat().st_size > 5000
    assert s.dialogs == []


def test_rejecting_and_answering_in_the_browser_reply_to_the_person(stack: Stack) -> None:
    s = stack
    s.bot.add_user(IVAN, phone="+77010000000")
    s.bot.add_user(ANNA)
    s.bot.account.append(mail(IVAN, "Personal data update", "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77"))
    s.bot.account.append(mail(ANNA, "Question about personal data", "To whom do you pass my phone?"))
    update_id, question_id = _wait_for_review(s.bot, 2)
    s.sign_in()
    page = s.page

    page.goto(f"{s.web.url}/requests/{update_id}")
    page.fill("#reject textarea[name=reason]", "Please give one phone number.")
    page.click("#reject button")
    assert "rejected" in page.inner_text(".message.ok")
    page.goto(f"{s.web.url}/requests/{question_id}")
    assert page.locator("#approve").count() == 0  # a question is answered
    page.fill("#answer textarea[name=text]", "We pass it to nobody (policy 6.2).")
    page.click("#answer button")
    assert "completed" in page.inner_text(".message.ok")

    wait_until(lambda: any("Please give one phone number." in t for t in s.replies_to(IVAN)), what="the rejection")
    wait_until(lambda: any("We pass it to nobody" in t for t in s.replies_to(ANNA)), what="the answer")
    states = {r.id: (r.state, r.outcome) for r in s.bot.requests()}
    assert states == {update_id: ("rejected", "request_rejected"), question_id: ("completed", "question_answer")}
    user = s.bot.user(IVAN)
    assert user is not None and user.phone == "+77010000000"


def test_a_wrong_password_is_refused_and_repeated_failures_are_throttled(stack: Stack) -> None:
    page = stack.page
    for _ in range(5):
        stack.sign_in("not the password")
        assert "Wrong login or password." in page.inner_text("[role=alert]")
    stack.sign_in()  # the right password, while throttled
    assert "Too many failed attempts" in page.inner_text("[role=alert]")
    page.goto(f"{stack.web.url}/queue")
    assert page.url.endswith("/login")


def test_a_form_posted_without_its_csrf_token_is_refused(stack: Stack) -> None:
    stack.bot.add_user(IVAN, phone="+77010000000")
    stack.bot.account.append(mail(IVAN, "Personal data update", "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77"))
    [request_id] = _wait_for_review(stack.bot, 1)
    stack.sign_in()
    page = stack.page
    page.goto(f"{stack.web.url}/requests/{request_id}")
    page.evaluate("document.querySelector('#reject input[name=csrf_token]').remove()")
    page.fill("#reject textarea[name=reason]", "forged")
    page.click("#reject button")
    assert "The form was not accepted" in page.inner_text("[role=alert]")
    assert [r.state for r in stack.bot.requests()] == ["review"]


def test_a_script_in_the_subject_is_text_and_revealing_a_field_is_audited(stack: Stack) -> None:
    subject = "Personal data update <script>alert(1)</script><img src=x onerror=alert(2)>"
    stack.bot.add_user(IVAN, phone="+77010000000")
    stack.bot.account.append(mail(IVAN, subject, "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77"))
    [request_id] = _wait_for_review(stack.bot, 1)
    stack.sign_in()
    page = stack.page
    page.goto(f"{stack.web.url}/requests/{request_id}")
    assert "alert" not in page.inner_text("td.subject")  # masked until revealed
    assert IVAN not in page.content()
    page.click("button.reveal[value=subject]")
    assert page.inner_text(".revealed[data-field=subject]") == subject
    assert page.locator("main img").count() == 0

    page.click("button.reveal[value=sender]")
    assert page.inner_text(".revealed[data-field=sender]") == IVAN
    subject_shown, sender_shown = [e for e in stack.bot.events() if e.event == "field_revealed"]
    assert subject_shown.detail == {"field": "subject"}
    assert (sender_shown.actor, sender_shown.request_id, sender_shown.detail) == (f"web:{LOGIN}", request_id,
                                                                                  {"field": "sender"})
    page.click("form.logout button")
    page.goto(f"{stack.web.url}/requests/{request_id}")
    assert page.url.endswith("/login")
    assert stack.dialogs == []  # no script ran


def test_an_operator_pages_through_a_long_queue_and_its_deadlines_with_next_and_previous(stack: Stack) -> None:
    now = utcnow()
    with stack.bot.store.transaction() as session:  # more than a page; the newest has the lowest id
        rows = [Request(message_ref=f"page{n}", source="s", uidvalidity=1, uid=n, kind="question",
                        intents=["question"], state="review", language="ru", subject_ref="-",
                        received_at=now - timedelta(days=10, hours=n), due_at=now - timedelta(hours=n, minutes=30))
                for n in range(PAGE_SIZE + 5)]
        session.add_all(rows)
        session.flush()
        oldest_first = [r.id for r in reversed(rows)]
    stack.sign_in()
    page = stack.page

    def shown() -> list[int]:
        return [int(i) for i in page.locator("tr[data-request]").evaluate_all("rs => rs.map(r => r.dataset.request)")]

    assert page.url.endswith("/queue") and shown() == oldest_first[:PAGE_SIZE]
    assert page.locator("a[rel=prev]").count() == 0
    assert page.inner_text(".counts") == f"{PAGE_SIZE + 5} waiting, {PAGE_SIZE + 5} of them overdue."
    page.click("a[rel=next]")
    assert shown() == oldest_first[PAGE_SIZE:] and page.locator("a[rel=next]").count() == 0
    page.click("a[rel=prev]")
    assert shown() == oldest_first[:PAGE_SIZE] and page.locator("a[rel=prev]").count() == 0

    page.click("nav a[href='/deadlines']")
    assert f"Late ({PAGE_SIZE + 5})" in page.inner_text("main")
    first = page.locator("table.deadlines a").all_inner_texts()
    page.click("a[rel=next]")
    rest = page.locator("table.deadlines a").all_inner_texts()
    assert first + rest == [f"#{i}" for i in oldest_first]  # due in the order received: the most overdue first
    assert stack.dialogs == []


LOCALES = {"ru": "ru-RU", "kk": "kk-KZ", "en": "en-US"}


def raw_codes(text: str, language: str) -> list[str]:
    """Codes shown as they are stored: any with an underscore; on a ru or kk page, any English code word too."""
    from dsr_mailbot.replies.reply import default_templates_dir
    from dsr_mailbot.web.context import load_codes

    codes = load_codes(default_templates_dir() / "console")
    found = [code for table in codes.values() for code in table if "_" in code and code in text]
    if language != "en":
        words = {code for category in ("intent", "state", "outcome", "field", "problem") for code in codes[category]}
        found += [word for word in sorted(words) if re.search(rf"\b{word}\b", text)]
    return found


@pytest.mark.parametrize("language", ["ru", "kk", "en"])
def test_every_page_in_the_operators_language_shows_no_raw_code(bot: Bot, chromium: Browser, tmp_path: Path,
                                                                 language: str) -> None:
    port = free_port()
    with_operator(bot, language=language, port=port, extra="\n[daemon]\npoll_interval_seconds = 1\n")
    bot.add_user(IVAN, surname="Петров", phone="+77011112233")
    bot.add_user(ANNA)
    # In review with a problem (two phones), a question waiting for its answer, and a letter naming another user.
    bot.account.append(mail(IVAN, "Personal data update", "Телефон: +7 701 111 22 44\nТелефон: +7 701 555 66 77"))
    bot.account.append(mail(ANNA, "Вопрос об обработке персональных данных", "Кому вы передаёте мой телефон?"))
    daemon, web = DaemonProcess(bot), WebProcess(bot, port)
    context = chromium.new_context(locale=LOCALES[language])
    page = context.new_page()
    try:
        ids = _wait_for_review(bot, 2)
        page.goto(f"{web.url}/login")
        assert page.locator("html").get_attribute("lang") == language  # the browser's language, before login
        shots = [_screenshot(page, f"console-login-{language}.png", tmp_path)]
        page.fill("input[name=username]", LOGIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button[type=submit]")
        pages = [("queue", "/queue"), ("deadlines", "/deadlines"), ("acts", "/acts"), ("report", "/report"),
                 *((f"request-{n}", f"/requests/{i}") for n, i in enumerate(ids, 1)), ("not-found", "/requests/999")]
        for name, path in pages:
            page.goto(f"{web.url}{path}")
            shots.append(_screenshot(page, f"console-{name}-{language}.png", tmp_path))
            assert raw_codes(page.inner_text("body"), language) == [], (name, language)
        assert all(shot.stat().st_size > 3000 for shot in shots)
    finally:
        context.close()
        assert web.stop() in (0, -signal.SIGTERM)
        assert daemon.stop() == 0
