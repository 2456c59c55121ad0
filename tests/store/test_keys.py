"""The secret key file and the keyed hashes made with it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dsr_mailbot.errors import ConfigError
from dsr_mailbot.store.keys import Keyring, load_or_create_keyring


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bot.key"
    first = load_or_create_keyring(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_keyring(path).secret == first.secret
    assert len(first.secret) == 32


def test_a_damaged_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.key"
    path.write_text("not hex", encoding="ascii")
    with pytest.raises(ConfigError, match="key_file"):
        load_or_create_keyring(path)
    path.write_text("abcd", encoding="ascii")
    with pytest.raises(ConfigError, match="shorter"):
        load_or_create_keyring(path)


def test_subject_refs_hide_the_address_and_ignore_case() -> None:
    keys = Keyring(b"k" * 32)
    ref = keys.subject_ref("Ivan@Example.RU ")
    assert ref == keys.subject_ref("ivan@example.ru")
    assert "ivan" not in ref and len(ref) == 32
    assert ref != Keyring(b"j" * 32).subject_ref("ivan@example.ru")
    assert keys.digest("a", "x") != keys.digest("b", "x")


def test_a_key_given_in_the_configuration_replaces_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsr_mailbot.config import load_config
    from dsr_mailbot.store.keys import keyring_for

    monkeypatch.setenv("DSR_KEY", "ab" * 32)
    config_path = tmp_path / "c.toml"
    config_path.write_text('[maildir]\npath = "m"\n[secrets]\nkey_env = "DSR_KEY"\n', encoding="utf-8")
    config = load_config(config_path)
    assert keyring_for(config.secret_key, config.key_file).secret == bytes.fromhex("ab" * 32)
    assert not config.key_file.exists()
    config_path.write_text('[maildir]\npath = "m"\n[secrets]\nkey = "abcd"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="32 hex digits"):
        load_config(config_path)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "bot.key"
    probe = (
        "from pathlib import Path; from dsr_mailbot.store.keys import load_or_create_keyring as k; "
        f"print(k(Path({str(path)!r})).secret.hex())"
    )
    procs = [subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True) for _ in range(8)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and len(next(iter(keys))) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.key"]
