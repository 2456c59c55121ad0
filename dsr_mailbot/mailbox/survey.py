"""What ``dsr-mailbot check`` needs to know of the IMAP mailbox, read without changing anything in it.

It logs in as the bot does (:class:`~dsr_mailbot.mailbox.imap.ImapSource`),
EXAMINEs the watched folder (read-only: not even \\Recent changes), looks the
processed folder up without creating it, and asks MYRIGHTS (RFC 4314) on
both when the server has ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass

from imapclient.exceptions import IMAPClientError

from dsr_mailbot.config import ImapConfig
from dsr_mailbot.errors import SourceError, SourceUnavailable
from dsr_mailbot.mailbox.imap import ImapSource, imap_errors


@dataclass(frozen=True)
class MailboxSurvey:
    login_method: str
    capabilities: frozenset[str]
    folder_problem: str | None  # the server's answer to EXAMINE when it refused, else None
    processed_exists: bool
    rights: dict[str, str] | None  # MYRIGHTS of the folder and the processed folder; None: no ACL extension


def survey_imap(config: ImapConfig) -> MailboxSurvey:
    """Raises SourceUnavailable (not reachable) or ConfigError (login refused), as a run would."""
    source = ImapSource(config)
    try:
        source.connect()
        client = source.client
        with imap_errors("capabilities"):
            capabilities = frozenset(c.decode("ascii", "replace").upper() for c in client.capabilities())
        folder_problem = None
        try:
            source.examine()
        except SourceUnavailable:
            raise  # the connection dropped: unreachable (75), not a folder the server refused (78)
        except SourceError as exc:
            folder_problem = str(exc)
        with imap_errors("list"):
            processed_exists = bool(client.folder_exists(config.processed_folder))
        rights: dict[str, str] | None = None
        if "ACL" in capabilities:
            rights = {}
            for folder in (config.folder, config.processed_folder):
                try:
                    with imap_errors("myrights"):
                        # imapclient has no MYRIGHTS; imaplib, under it, has (RFC 4314 §3.5), but sends the name
                        # as it is: imapclient's own encoding (modified UTF-7) and quoting first.
                        typ, data = client._imap.myrights(client._normalise_folder(folder))
                    text = data[0].decode("ascii", "replace") if typ == "OK" and data and data[0] else ""
                    rights[folder] = text.rsplit(" ", 1)[-1] if text else ""
                except (SourceError, IMAPClientError):
                    rights[folder] = ""
        return MailboxSurvey(source.login_method, capabilities, folder_problem, processed_exists, rights)
    finally:
        source.close()
