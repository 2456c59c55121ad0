"""The demo: the whole job on embedded defaults, as the README's first command runs it."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from dsr_mailbot.config import load_config
from dsr_mailbot.demo import run_demo, sample_messages
from dsr_mailbot.store.database import Store, all_requests
from dsr_mailbot.store.users import export_users


def test_demo_applies_requests_answers_them_and_leaves_other_mail(tmp_path: Path) -> None:
    out = io.StringIO()
    run_demo(tmp_path / "demo", Console(file=out, width=200))

    config = load_config(tmp_path / "demo" / "config.toml")
    store = Store(config.database_url)
    with store.transaction() as session:
        states = sorted((r.kind, r.language, r.state) for r in all_requests(session))
    users = {u["email"]: u for u in export_users(store)}
    store.dispose()
    assert states == sorted([
        ("update", "ru", "completed"), ("withdraw", "kk", "completed"), ("optout", "en", "completed"),
        ("update", "ru", "completed"), ("update", "en", "rejected"), ("update", "ru", "rejected"),
        ("confirm", "kk", "completed"), ("access", "ru", "completed"), ("confirm", "ru", "completed"),
        ("question", "en", "review"),  # a newcomer sees every intent: the question waits for a person's answer
    ])
    assert users["ivan.petrov@example.ru"]["phone"] == "+79167654321"
    assert users["dana.k@example.kz"]["phone"] == "+77071234567"
    assert users["aigerim.n@example.kz"]["processing_consent"] is False
    assert users["john.smith@example.com"]["marketing_consent"] is False
    assert config.maildir is not None and config.file_delivery is not None
    assert len(list((config.maildir.path / "new").iterdir())) == len(sample_messages()) - 8
    outbox = sorted(p.name for p in config.file_delivery.directory.glob("*.eml"))
    assert len(outbox) == 10 and len([n for n in outbox if n.startswith("dsr.2.o.")]) == 1  # the withdrawal's
    assert len([n for n in outbox if n.startswith("dsr.7.o.")]) == 1  # and the access request's challenge
    text = out.getvalue()
    assert "Run 1:" in text and "(2 awaiting_confirmation, 3 completed, 2 rejected, 1 review)" in text
    assert "Asia/Almaty" in text  # times shown with their zone
    assert "Run 3: scanned 0 new message(s); 0 request(s)" in text
    assert "Ordinary mail left untouched" in text


def test_demo_refuses_to_overwrite_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(SystemExit):
        run_demo(tmp_path, Console(file=io.StringIO()))
    assert (tmp_path / "keep.txt").exists()


def test_demo_command_runs_twice_in_the_same_place(tmp_path: Path) -> None:
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "dsr_mailbot", "demo", "--dir", str(tmp_path / "d")],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert "Run 1: scanned 11 new message(s); 8 request(s)" in result.stdout.replace("\n", " ")
