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
from dsr_mailbot.keys import Keyring
from dsr_mailbot.reply import (
    OUTCOME_TEMPLATES,
    Renderer,
    build_message,
    format_date,
    reply_message_id,
    reply_subject,
    sample_context,
)

REPO = Path(__file__).resolve().parents[1]


def test_every_outcome_has_a_template_in_every_language() -> None:
    for language in LANGUAGES:
        for outcome in OUTCOME_TEMPLATES:
            assert (REPO / "templates" / language / f"{outcome}.txt").is_file()
    Renderer(operator_name="Shop").check()


def test_rendered_reply_uses_the_language_labels() -> None:
    rendered = Renderer(operator_name="SmartThings LLP").render("update_applied", "kk", sample_context())
    assert rendered.subject is None  # answered in the thread of the request
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


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"ru/update_applied\.txt"):
        Renderer(tmp_path).check()


def test_dates_are_written_the_local_way() -> None:
    day = datetime(2026, 12, 25, tzinfo=UTC)
    assert format_date(day, "ru") == "25.12.2026"
    assert format_date(day, "en") == "25 December 2026"


def test_reply_subject_keeps_the_thread() -> None:
    assert reply_subject("Personal data update") == "Re: Personal data update"
    assert reply_subject("RE: Обновление\r\n персональных данных") == "RE: Обновление персональных данных"


def test_reply_message_ids_are_deterministic_per_request_and_purpose() -> None:
    keys = Keyring(b"k" * 32)
    assert reply_message_id(keys, 7, "reply", "smarthings.kz") == reply_message_id(keys, 7, "reply", "smarthings.kz")
    assert reply_message_id(keys, 7, "reply", "x") != reply_message_id(keys, 8, "reply", "x")
    assert reply_message_id(keys, 7, "reply", "x") != reply_message_id(Keyring(b"j" * 32), 7, "reply", "x")


def test_reply_message_is_threaded_and_marked_automatic() -> None:
    data = build_message(
        from_address="support@smarthings.kz", from_name="SmartThings LLP", to_address="a@example.kz",
        subject="Re: Отзыв согласия", body="Текст ответа\n", message_id="<dsr.1.reply.x@smarthings.kz>",
        language="ru", in_reply_to="<in@client>", references=["<old@client>", "<in@client>"],
        now=datetime(2026, 11, 25, tzinfo=UTC),
    )
    msg = email.message_from_bytes(data, policy=default_policy)
    assert msg["In-Reply-To"] == "<in@client>"
    assert msg["References"] == "<old@client> <in@client>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-DSR-Mailbot"] == "reply"
    assert msg["Subject"] == "Re: Отзыв согласия"
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
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   capture_output=True, check=True, timeout=300)
    probe = (
        "import dsr_mailbot.reply as r; d = r.default_templates_dir(); "
        f"assert str(d).startswith({str(target)!r}), d; r.Renderer(d).check(); print(d)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
