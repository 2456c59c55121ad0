"""The bot's secret key and the keyed hashes made with it.

One random key, kept in a file the bot creates with mode 0600, keys every
hash the bot makes, each under its own purpose label so that a value made
for one use is useless for another:

- ``subject_ref``: links audit events to one person without storing their
  address (an HMAC cannot be reversed or looked up in a table of known
  addresses without the key);
- ``message_id``: the deterministic Message-ID of each reply;
- ``message_ref``: the dedup key of each inbound request, kept after the
  Message-ID itself (which often holds an address) is erased.

Losing the key breaks the link between old audit events and people (which
is harmless to privacy but loses history); the README says to back it up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.errors import ConfigError

_KEY_BYTES = 32


@dataclass(frozen=True)
class Keyring:
    """Holds the secret key and derives purpose-bound HMACs from it."""

    secret: bytes = field(repr=False)

    def digest(self, purpose: str, value: str) -> str:
        """Hex HMAC-SHA256 of ``value`` under ``purpose``."""
        mac = hmac.new(self.secret, purpose.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.hexdigest()

    def subject_ref(self, email: str) -> str:
        """The pseudonymous reference of a person, made from their address in its normal form."""
        return self.digest("subject-ref", normalise_address(email.strip()) or email.strip().lower())[:32]

    def message_ref(self, message_id: str) -> str:
        """The keyed hash of an inbound Message-ID: the dedup key that survives the person's erasure."""
        return self.digest("message-ref", message_id)[:40]


def keyring_for(secret_key: str | None, key_file: Path) -> Keyring:
    """The configured key (``[secrets] key`` / ``key_env``), else the key file, created when missing."""
    if secret_key is not None:
        return Keyring(bytes.fromhex(secret_key))
    return load_or_create_keyring(key_file)


def load_or_create_keyring(path: Path) -> Keyring:
    """Read the key at ``path``; create it (mode 0600) when it does not exist yet."""
    try:
        return Keyring(_read_key(path))
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(_KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        # link() publishes the finished file or fails: when two processes start at once,
        # one key wins and nobody ever reads a half-written file.
        os.link(tmp, path)
    except FileExistsError:
        return Keyring(_read_key(path))
    except OSError as exc:
        raise ConfigError(f"[secrets] key_file: cannot create {path} ({exc.strerror})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return Keyring(key)


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[secrets] key_file: cannot read {path}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(f"[secrets] key_file: {path} does not hold a hex key") from exc
    if len(key) < 16:
        raise ConfigError(f"[secrets] key_file: {path} holds a key shorter than 128 bits")
    return key
