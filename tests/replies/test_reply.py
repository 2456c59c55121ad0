"""Reply templates and the reply message itself."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path

import pytest

from dsr_mailbot.config import LANGUAGES
from dsr_mailbot.errors import TemplateError
from dsr_mailbot.replies.render import Renderer, sample_context
from dsr_mailbot.replies.reply import (
    OUTCOME_TEMPLATES,
    build_message,
    encoded_words,
    format_date,
    mailbox_header,
    thread_references,
)
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.own_mail import our_messages, reply_message_id
from tests.harness import REPO


def test_every_outcome_has_a_template_in_every_language() -> None:
    for language in LANGUAGES:
        for outcome in OUTCOME_TEMPLATES:
            assert (REPO / "templates" / language / f"{outcome}.txt").is_file()
    Renderer(operator_name="Shop").check()


def test_rendered_reply_uses_the_language_labels() -> None:
    rendered = Renderer(operator_name="SmartThings LLP").render("update_applied", "kk", sample_context())
    assert rendered.subject == "Дербес деректеріңіз жаңартылды (сұрау № 42)"  # fixed; the sender's never
    text = rendered.body
    assert "Телефон: +77011234567" in text and "Тегі: Иванов" in text
    assert "Әкесінің аты: мәнді тану мүмкін болмады" in text
    assert text.rstrip().endswith("автоматты түрде жіберілді.")


def test_a_template_using_an_unknown_name_fails_the_start_up_check(tmp_path: Path) -> None:
    for language in LANGUAGES:
        (tmp_path / language).mkdir()
        for outcome in OUTCOME_TEMPLATES:
            (tmp_path / language / f"{outcome}.txt").write_text("Hello {{ no_such_value }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="no_such_value"):
        Renderer(tmp_path).check()


def test_the_start_up_check_renders_once_per_set_of_templates_and_again_after_any_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "en").mkdir()
    template = tmp_path / "en" / "note.txt"
    template.write_text("Subject: Note\nHello {{ name }}\n", encoding="utf-8")
    renders = [("note", "en", {"name": "Ivan"})]
    rendered: list[str] = []
    real_render = Renderer.render

    def counted(self: Renderer, outcome: str, language: str, context: object) -> object:
        rendered.append(outcome)
        return real_render(self, outcome, language, context)  # type: ignore[arg-type]

    monkeypatch.setattr(Renderer, "render", counted)

    Renderer(tmp_path).render_all(renders)
    Renderer(tmp_path).render_all(renders)  # the next cron run: same templates, same list
    assert rendered == ["note"]
    Renderer(tmp_path).render_all([("note", "en", {"name": "Anna"})])  # another list: checked again
    assert rendered == ["note", "note"]

    template.write_text("Subject: Note\nHello {{ no_such_name }}\n", encoding="utf-8")  # an edit
    with pytest.raises(TemplateError, match="no_such_name"):
        Renderer(tmp_path).render_all(renders)
    with pytest.raises(TemplateError, match="no_such_name"):
        Renderer(tmp_path).render_all(renders)  # a failed check leaves no stamp


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"ru/update_applied\.txt"):
        Renderer(tmp_path).check()


def test_dates_are_written_the_local_way() -> None:
    day = datetime(2026, 12, 25, tzinfo=UTC)
    assert format_date(day, "ru") == "25.12.2026"
    assert format_date(day, "en") == "25 December 2026"


def test_every_template_sets_its_own_subject_and_no_subject_is_a_request_marker() -> None:
    """A reply keeps our subject; it must never read as a new request (nor quote the sender's words)."""
    from dsr_mailbot.reading.classify import classify_subject

    renderer = Renderer(operator_name="Shop")
    for language in LANGUAGES:
        for outcome in OUTCOME_TEMPLATES:
            subject = renderer.render(outcome, language, sample_context()).subject
            assert subject and classify_subject(subject) is None and classify_subject(f"Re: {subject}") is None


def test_a_template_without_a_subject_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "update_applied.txt").write_text("Здравствуйте!\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="Subject"):
        Renderer(tmp_path).render("update_applied", "ru", sample_context())


def test_references_keep_the_parents_thread() -> None:
    assert thread_references("<p@x>", ["<a@x>", "<b@x>"]) == ["<a@x>", "<b@x>", "<p@x>"]
    assert thread_references("<p@x>", []) == ["<p@x>"]
    assert thread_references(None, ["<a@x>"]) == []


def test_encoded_words_stay_within_75_characters_and_never_split_a_letter() -> None:
    text = "Дербес деректерді өңдеуге келісімді қайтарып алу 😀" * 5
    words = encoded_words(text)
    assert max(len(w) for w in words) <= 75
    assert "".join(__import__("email.header").header.decode_header(" ".join(words))[0][0].decode()
                   for _ in [0]) == text


def test_an_operator_name_with_a_comma_stays_one_mailbox() -> None:
    assert mailbox_header("SmartThings, LLP", "support@smarthings.kz") == '"SmartThings, LLP" <support@smarthings.kz>'
    header = f"From: {mailbox_header('ТОО «Умные вещи», Алматы', 'support@smarthings.kz')}\r\n\r\n"
    msg = email.message_from_bytes(header.encode(), policy=default_policy)
    [address] = msg["From"].addresses
    assert address.addr_spec == "support@smarthings.kz"
    assert " ".join(address.display_name.split()) == "ТОО «Умные вещи», Алматы"


def test_our_messages_are_recognised_by_their_keyed_tag_only() -> None:
    keys = Keyring(b"k" * 32)
    ours = reply_message_id(keys, 7, "reply", "smarthings.kz")
    assert our_messages(keys, f"<x@client> {ours}")[0].request_id == 7
    forged = ours.replace(ours[-30:-16], "0" * 14)
    assert our_messages(keys, forged) == [] and our_messages(Keyring(b"j" * 32), ours) == []


def test_reply_message_ids_are_deterministic_per_request_and_purpose() -> None:
    keys = Keyring(b"k" * 32)
    assert reply_message_id(keys, 7, "reply", "smarthings.kz") == reply_message_id(keys, 7, "reply", "smarthings.kz")
    assert reply_message_id(keys, 7, "reply", "x") != reply_message_id(keys, 8, "reply", "x")
    assert reply_message_id(keys, 7, "reply", "x") != reply_message_id(Keyring(b"j" * 32), 7, "reply", "x")


def test_reply_message_is_threaded_and_marked_automatic() -> None:
    data = build_message(
        from_address="support@smarthings.kz", from_name="SmartThings LLP", to_address="a@example.kz",
        subject="Ваше согласие отозвано (запрос № 1)", body="Текст ответа\n",
        message_id="<dsr.1.reply.x@smarthings.kz>", language="ru", in_reply_to="<in@client>",
        references=["<old@client>", "<in@client>"], auto_submitted="auto-replied",
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    msg = email.message_from_bytes(data, policy=default_policy)
    assert msg["In-Reply-To"] == "<in@client>"
    assert msg["References"] == "<old@client> <in@client>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-DSR-Mailbot"] == "reply"
    assert msg["Subject"] == "Ваше согласие отозвано (запрос № 1)"
    assert msg.get_content().replace("\r\n", "\n") == "Текст ответа\n"
    assert all(b < 128 for b in data)  # 7-bit clean for any MTA


def test_templates_ship_inside_the_wheel_and_are_found_after_a_normal_install(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    if build.returncode != 0:  # no hatchling in this environment: build it isolated
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)],
            capture_output=True, text=True, check=False, timeout=300,
        )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = list(tmp_path.glob("dsr_mailbot-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for language in LANGUAGES:
        assert f"dsr_mailbot/templates/{language}/update_applied.txt" in names
    assert "dsr_mailbot/intents/deadlines.toml" in names  # the deadline profiles are data in the package
    assert "dsr_mailbot/store/migrations/versions/0001_first_release.py" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   capture_output=True, check=True, timeout=300)
    probe = (
        "import dsr_mailbot.replies.reply as r; import dsr_mailbot.replies.render as rr; "
        "d = r.default_templates_dir(); "
        f"assert str(d).startswith({str(target)!r}), d; rr.Renderer(d).check(); print(d)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_template_output_passes_a_strict_parser() -> None:
    """What Postfix in strict mode and mutt read: no defects, encoded words ≤ 75, '-- ' signatures."""
    import re
    from email.policy import SMTP as SMTP_POLICY

    from dsr_mailbot.replies.reply import TEMPLATE_SPECS

    strict = SMTP_POLICY.clone(raise_on_defect=True)
    renderer = Renderer(operator_name="SmartThings, LLP «Умные вещи»")
    for language in LANGUAGES:
        for outcome in OUTCOME_TEMPLATES:
            rendered = renderer.render(outcome, language, sample_context())
            answers = TEMPLATE_SPECS[outcome].answers_recipient
            data = build_message(
                from_address="support@smarthings.kz", from_name=renderer.operator_name,
                to_address="ivan@example.ru", subject=rendered.subject, body=rendered.body,
                message_id="<dsr.1.reply.0123456789abcdef0123@smarthings.kz>", language=language,
                in_reply_to="<in@client>" if answers else None, references=["<a@client>", "<in@client>"],
                auto_submitted="auto-replied" if answers else "auto-generated",
                now=datetime(2026, 11, 25, tzinfo=UTC),
            )
            msg = email.message_from_bytes(data, policy=strict)
            header_block = data.split(b"\r\n\r\n", 1)[0]
            assert all(len(line) <= 78 for line in header_block.split(b"\r\n")), (language, outcome)
            assert all(len(w) <= 75 for w in re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", data)), (language, outcome)
            assert str(msg["Subject"]) == rendered.subject
            [sender] = msg["From"].addresses
            assert sender.addr_spec == "support@smarthings.kz"
            assert " ".join(sender.display_name.split()) == "SmartThings, LLP «Умные вещи»"
            assert msg["Auto-Submitted"] == ("auto-replied" if answers else "auto-generated")
            body = msg.get_content().replace("\r\n", "\n")
            assert "\n-- \n" in body and "\n--\n" not in body
            assert msg.get_content_type() == "text/plain" and data.isascii()
