"""The support mailbox over IMAP (imapclient).

What this adapter promises the shared mailbox:

- scanning uses EXAMINE (read-only) and ``BODY.PEEK[HEADER.FIELDS (…)]``
  with just the fields the caller's triage reads (``BODY.PEEK[HEADER]``
  when the server refuses that, and for the few messages the triage wants
  to see whole): no flag of any message changes, not even \\Recent;
- whole bodies are fetched (``BODY.PEEK[]``, capped at ``max_bytes``) only
  for messages the caller has recognised as requests, several in one FETCH
  when the caller asks for a group;
- only request messages are moved: with MOVE (RFC 6851) when offered,
  otherwise COPY, then \\Deleted and ``UID EXPUNGE`` of exactly those UIDs
  (UIDPLUS).  Without UIDPLUS the copy is left flagged \\Deleted rather than
  issuing a plain EXPUNGE, which would remove other people's deleted mail.

Every socket has a timeout (library-notes 1.3).  Library and socket errors
become :class:`SourceUnavailable` (may pass) or :class:`SourceError`.
"""

from __future__ import annotations

import imaplib
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from threading import Event
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from dsr_mailbot.config import ImapConfig
from dsr_mailbot.config.mailboxes import section_of
from dsr_mailbot.credentials.sasl import OAUTHBEARER, chosen_mechanism
from dsr_mailbot.credentials.tokens import AccessTokens
from dsr_mailbot.errors import ConfigError, CredentialsUnavailable, SourceError, SourceUnavailable
from dsr_mailbot.mailbox.source import FIELDS_CAP_BYTES, FetchedMessage, HeaderRecord
from dsr_mailbot.reading.parse import Headers, parse_headers

CONNECT_TIMEOUT_SECONDS = 15
IDLE_CHECK_SECONDS = 1.0
HEADER_BATCH = 200  # header blocks per FETCH when erasure checks search hits exactly


@contextmanager
def imap_errors(operation: str, section: str = "imap") -> Iterator[None]:
    try:
        yield
    except LoginError as exc:
        # Not a passing fault: every run fails the same way until the configuration is fixed.
        raise ConfigError(f"[{section}] username/password: login refused") from exc
    except imaplib.IMAP4.abort as exc:
        raise SourceUnavailable(f"IMAP {operation}: connection lost") from exc
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        raise SourceError(f"IMAP {operation}: server said no ({_short(exc)})") from exc
    except (OSError, EOFError) as exc:
        raise SourceUnavailable(f"IMAP {operation}: {type(exc).__name__}") from exc


def _short(exc: Exception) -> str:
    # Server answers name folders and commands, not people; still, keep it short.
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


class ImapSource:
    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.client: Any = None
        self.read_write = False
        self.highest_seen_uid = 0
        self.fields_refused = False
        self.uidnext: int | None = None
        self.tokens: AccessTokens | None = None
        # Where its keys are in the file: [imap], or [[mailboxes]] by name ("mailboxes.support").
        self.section = section_of(config)
        self.login_method = ""  # how the last login was made: "password", "OAUTHBEARER" or "XOAUTH2"

    def open(self) -> int:
        self.connect()
        return self.examine()

    def examine(self) -> int:
        """The watched folder, read-only (EXAMINE); its UIDVALIDITY."""
        return self._select(read_write=False)

    def connect(self) -> None:
        """Connect and log in (``dsr-mailbot check`` stops here to look at the folders itself)."""
        cfg = self.config
        with imap_errors("connect", self.section):
            client = IMAPClient(
                cfg.host,
                port=cfg.port,
                ssl=cfg.security == "ssl",
                ssl_context=ssl.create_default_context() if cfg.security == "ssl" else None,
                timeout=SocketTimeout(connect=CONNECT_TIMEOUT_SECONDS, read=cfg.timeout_seconds),
            )
            client.normalise_times = False
            self.client = client
            if cfg.security == "starttls":
                client.starttls(ssl.create_default_context())
            if cfg.oauth2 is None:
                assert cfg.password is not None  # the configuration requires one with auth = "password"
                client.login(cfg.username, cfg.password)
                self.login_method = "password"
        if cfg.oauth2 is not None:
            self._oauth2_login(client)

    def _oauth2_login(self, client: Any) -> None:
        """OAUTHBEARER where the server offers it, else XOAUTH2.  A refused token is refreshed once and tried again
        (revoked, or expired early); a fresh token refused too is the configuration's fault."""
        assert self.config.oauth2 is not None
        tokens = self.tokens = self.tokens or AccessTokens(self.config.oauth2, "imap", self.section)
        with imap_errors("capabilities"):
            offered = [c.decode().removeprefix("AUTH=") for c in client.capabilities() if c.startswith(b"AUTH=")]
        mechanism = chosen_mechanism(offered)
        if mechanism is None:
            raise ConfigError(f'[{self.section}] auth = "oauth2": the server offers neither OAUTHBEARER nor XOAUTH2')
        login = client.oauthbearer_login if mechanism == OAUTHBEARER else client.oauth2_login
        self.login_method = mechanism
        token = self._token(tokens.current)
        try:
            with imap_errors("login", self.section):
                login(self.config.username, token)
            return
        except ConfigError:
            pass  # LoginError: the token was refused
        token = self._token(lambda: tokens.refresh(rejected=token))
        try:
            with imap_errors("login", self.section):
                login(self.config.username, token)
        except ConfigError:
            raise ConfigError(f"[{self.section}] oauth2: the server refused a fresh access token ({mechanism}); "
                              f"check the app's IMAP permission and [imap] username") from None

    @staticmethod
    def _token(get: Callable[[], str]) -> str:
        try:
            return get()
        except CredentialsUnavailable as exc:
            raise SourceUnavailable(str(exc)) from exc

    def _select(self, read_write: bool) -> int:
        with imap_errors("select"):
            info = self.client.select_folder(self.config.folder, readonly=not read_write)
        self.read_write = read_write
        # The next UID the folder will give (RFC 3501: in every SELECT/EXAMINE answer); good only until mail arrives.
        uidnext = info.get(b"UIDNEXT")
        self.uidnext = int(uidnext) if uidnext is not None else None
        return int(info[b"UIDVALIDITY"])

    def scan(self, after_uid: int, batch_size: int,
             fields: Sequence[str] = ()) -> Iterator[list[HeaderRecord]]:
        uidnext, self.uidnext = self.uidnext, None  # from the folder's selection: true for the first scan only
        if uidnext is not None and uidnext <= after_uid + 1:
            # Nothing has a UID above the cursor: a pass with nothing new costs the EXAMINE and no more.
            self.highest_seen_uid = max(self.highest_seen_uid, after_uid)
            return
        with imap_errors("search"):
            uids = sorted(u for u in self.client.search(["UID", f"{after_uid + 1}:*"]) if u > after_uid)
        self.highest_seen_uid = max([self.highest_seen_uid, after_uid, *uids])
        for start in range(0, len(uids), batch_size):
            yield self._header_records(uids[start : start + batch_size], fields)

    def _header_records(self, batch: list[int], fields: Sequence[str]) -> list[HeaderRecord]:
        narrow = bool(fields) and not self.fields_refused
        # Only the asked-for fields, each message's capped (a batch's bytes stay bounded), and nothing else:
        # every item costs imapclient's parser time on every message.  Or the whole record.
        items = ([f"BODY.PEEK[HEADER.FIELDS ({' '.join(fields)})]<0.{FIELDS_CAP_BYTES}>"] if narrow
                 else ["BODY.PEEK[HEADER]", "RFC822.SIZE", "INTERNALDATE"])
        try:
            with imap_errors("fetch headers"):
                response = self.client.fetch(batch, items)
        except SourceError:
            if not narrow:
                raise
            self.fields_refused = True  # a server that will not pick fields: whole blocks from now on
            return self._header_records(batch, ())
        records = []
        for uid in batch:
            item = response.get(uid)
            if item is None:  # expunged meanwhile
                continue
            header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            records.append(
                HeaderRecord(
                    uid=uid,
                    header=header,
                    size=int(item.get(b"RFC822.SIZE", 0)),
                    internaldate=_aware(item.get(b"INTERNALDATE")),
                    complete=not narrow,
                )
            )
        return records

    def search_text(self, uids: Sequence[int], stems: Sequence[str]) -> set[int] | None:
        if not uids or not stems:
            return set()
        asked = set(uids)
        with imap_errors("search text"):
            return {uid for uid in self.client.search(text_search(_uid_set(uids), stems), charset="UTF-8")
                    if uid in asked}

    def complete_records(self, uids: Sequence[int]) -> dict[int, HeaderRecord]:
        return {record.uid: record for record in self._header_records(list(uids), ())} if uids else {}

    def fetch(self, uid: int, max_bytes: int) -> FetchedMessage | None:
        with imap_errors("fetch size"):
            sized = self.client.fetch([uid], ["RFC822.SIZE"]).get(uid)
        if sized is None:
            return None
        size = int(sized.get(b"RFC822.SIZE", 0))
        truncated = size > max_bytes
        # A partial fetch bounds memory for huge attachments; the text part comes first in practice.
        item_name = f"BODY.PEEK[]<0.{max_bytes}>" if truncated else "BODY.PEEK[]"
        with imap_errors("fetch body"):
            item = self.client.fetch([uid], [item_name]).get(uid)
        if item is None:
            return None
        data = next((v for k, v in item.items() if k.startswith(b"BODY[")), b"")
        return FetchedMessage(uid=uid, data=data or b"", truncated=truncated)

    def fetch_many(self, uids: Sequence[int], max_bytes: int) -> dict[int, FetchedMessage]:
        if not uids:
            return {}
        # One FETCH for all: a partial fetch gives the whole of a smaller message, and its size says which were cut.
        with imap_errors("fetch bodies"):
            response = self.client.fetch(list(uids), [f"BODY.PEEK[]<0.{max_bytes}>", "RFC822.SIZE"])
        found = {}
        for uid in uids:
            item = response.get(uid)
            if item is None:  # expunged meanwhile
                continue
            data = next((v for k, v in item.items() if k.startswith(b"BODY[")), b"") or b""
            found[uid] = FetchedMessage(uid=uid, data=data, truncated=int(item.get(b"RFC822.SIZE", 0)) > max_bytes)
        return found

    def _ensure_folder(self, folder: str) -> None:
        with imap_errors("create folder"):
            if not self.client.folder_exists(folder):
                try:
                    self.client.create_folder(folder)
                except IMAPClientError:
                    # Another worker may have created it since we looked.
                    if not self.client.folder_exists(folder):
                        raise
                # Subscribing is a courtesy to mail clients; the bot does not need it.
                with suppress(IMAPClientError):
                    self.client.subscribe_folder(folder)

    def archive(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        target = self.config.processed_folder
        self._ensure_folder(target)
        if not self.read_write:
            self._select(read_write=True)
        with imap_errors("move"):
            if self.client.has_capability("MOVE"):
                self.client.move(list(uids), target)
                return
            self.client.copy(list(uids), target)
            self.client.add_flags(list(uids), [b"\\Deleted"], silent=True)
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge(list(uids))

    def wait_for_change(self, timeout: float, stop: Event, use_idle: bool = True) -> None:
        if not use_idle or not self.client.has_capability("IDLE"):
            stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        with imap_errors("search"):
            # A message that arrived during the last scan may have been announced (EXISTS) in the
            # answer to one of its commands, where imaplib keeps it: IDLE would not announce it again.
            newer = self.client.search(["UID", f"{self.highest_seen_uid + 1}:*"])
        if any(uid > self.highest_seen_uid for uid in newer):
            return
        with imap_errors("idle"):
            self.client.idle()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    started = time.monotonic()
                    # Short checks keep SIGTERM responsive; they cost no traffic.
                    responses = self.client.idle_check(timeout=IDLE_CHECK_SECONDS)
                    if responses:
                        if any(_is_bye(r) for r in responses):
                            raise SourceUnavailable("IMAP idle: server said BYE")
                        if any(_is_change(r) for r in responses):
                            return
                    elif time.monotonic() - started < IDLE_CHECK_SECONDS / 2:
                        # imapclient swallows EOF in idle_check and returns [] at once (library-notes 1.2).
                        raise SourceUnavailable("IMAP idle: connection lost")
            finally:
                self.client.idle_done()

    def find_by_message_id(self, message_id: str) -> list[int]:
        with imap_errors("search"):
            return sorted(self.client.search(["HEADER", "Message-ID", message_id]))

    def expunge_processed(self, message_ids: Sequence[str]) -> int:
        folder = self.config.processed_folder
        wanted = {mid for mid in message_ids if mid}
        if not wanted:
            return 0
        with imap_errors("select processed folder"):
            if not self.client.folder_exists(folder):
                return 0
            self.client.select_folder(folder, readonly=False)
        try:
            uids: set[int] = set()
            for message_id in sorted(wanted):
                with imap_errors("search"):
                    uids.update(self.client.search(["HEADER", "Message-ID", message_id]))
            # IMAP's HEADER search matches substrings: only an exact Message-ID counts.
            exact = [uid for uid, headers in sorted(self._headers_of(sorted(uids)).items())
                     if headers.message_id in wanted]
            if exact:
                with imap_errors("expunge"):
                    self.client.add_flags(exact, [b"\\Deleted"], silent=True)
                    if self.client.has_capability("UIDPLUS"):
                        self.client.uid_expunge(exact)
                    else:  # the processed folder holds only the bot's own moves
                        self.client.expunge()
            return len(exact)
        finally:
            self._select(read_write=False)

    def count_from(self, address: str) -> int:
        with imap_errors("search"):
            candidates = self.client.search(["FROM", address])
        # FROM matches substrings and display names: only the parsed sender counts.
        return sum(1 for headers in self._headers_of(sorted(candidates)).values() if headers.sender == address)

    def _headers_of(self, uids: Sequence[int]) -> dict[int, Headers]:
        """The parsed header blocks of these messages, a FETCH per :data:`HEADER_BATCH` of them."""
        found: dict[int, Headers] = {}
        for start in range(0, len(uids), HEADER_BATCH):
            for record in self._header_records(list(uids[start : start + HEADER_BATCH]), ()):
                found[record.uid] = parse_headers(record.header)
        return found

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # closing a dead connection must not mask the error that killed it
            with suppress(Exception):
                client.shutdown()


def _is_bye(response: object) -> bool:
    return isinstance(response, tuple) and len(response) > 0 and response[0] == b"BYE"


def _is_change(response: object) -> bool:
    return isinstance(response, tuple) and len(response) > 1 and response[1] in (b"EXISTS", b"RECENT", b"EXPUNGE")


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _uid_set(uids: Sequence[int]) -> str:
    """``1:3,7,9:10``: runs of consecutive UIDs as ranges, so a batch's set stays short."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        runs.append(f"{start}:{previous}" if previous != start else str(start))
        if uid is not None:
            start = previous = uid
    return ",".join(runs)


def text_search(uid_set: str, stems: Sequence[str]) -> list[str]:
    """``UID <set> OR BODY a OR BODY b BODY c``: any of the stems in the text of those messages (OR is binary)."""
    criteria = ["UID", uid_set]
    for stem in stems[:-1]:
        criteria += ["OR", "BODY", stem]
    return [*criteria, "BODY", stems[-1]]
