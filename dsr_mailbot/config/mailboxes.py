"""``[[mailboxes]]``: several mailboxes watched at once (both spellings of the support address, support@ and
privacy@), each with the keys of ``[imap]`` or ``[maildir]``, a ``name`` and a ``kind``.

A single ``[imap]`` or ``[maildir]`` is shorthand for one entry named
``default``; both ways in one file are refused.  Each mailbox keeps its own
cursor (its :attr:`Mailbox.source_name`), folders and credentials; a
request's replies come from the address of the mailbox it arrived in
(:attr:`Mailbox.reply_from`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config.fields import Filled, KeyProblem
from dsr_mailbot.config.sections import ImapConfig, MaildirConfig

MAILBOX_KINDS = ("imap", "maildir")
DEFAULT_NAME = "default"  # the one mailbox of [imap] or [maildir]


def _address(value: str | None) -> str | None:
    if value is not None and normalise_address(value) is None:
        raise KeyProblem(None, "expected an e-mail address")
    return value


Address = Annotated[str | None, AfterValidator(_address)]


class ImapMailbox(ImapConfig):
    name: Filled
    kind: Literal["imap"]
    address: Address = None  # the mailbox's address; default: its username, when that is an address
    reply_from: Address = None  # replies' From when the SMTP login may not send as the address (Send As)


class MaildirMailbox(MaildirConfig):
    name: Filled
    kind: Literal["maildir"]
    address: Address = None
    reply_from: Address = None


MailboxEntry = Annotated[ImapMailbox | MaildirMailbox, Field(discriminator="kind")]


def section_of(source: ImapConfig | MaildirConfig) -> str:
    """Where a mailbox's keys are in the file, as messages name it: "imap" ("maildir"), or "mailboxes.<name>"."""
    if isinstance(source, ImapMailbox | MaildirMailbox):
        return f"mailboxes.{source.name}"
    return "imap" if isinstance(source, ImapConfig) else "maildir"


@dataclass(frozen=True)
class Mailbox:
    """One watched mailbox as the rest of the bot sees it, whichever way the file wrote it."""

    name: str
    imap: ImapConfig | None = None
    maildir: MaildirConfig | None = None
    reply_from: str | None = None  # None: the configuration's own ([smtp] from_address, else the first operator's)

    @property
    def source_name(self) -> str:
        """A stable name of the mailbox, the key of its cursor in the store and of each request's ``source``."""
        if self.imap is not None:
            return f"imap://{self.imap.username}@{self.imap.host}:{self.imap.port}/{self.imap.folder}"
        assert self.maildir is not None
        return f"maildir://{self.maildir.path}"

    @property
    def kind(self) -> str:
        return "imap" if self.imap is not None else "maildir"


def mailbox_of(entry: ImapMailbox | MaildirMailbox) -> Mailbox:
    username = entry.username if isinstance(entry, ImapMailbox) else ""
    reply_from = entry.reply_from or entry.address or (username if normalise_address(username) else None)
    if isinstance(entry, ImapMailbox):
        return Mailbox(entry.name, imap=entry, reply_from=reply_from)
    return Mailbox(entry.name, maildir=entry, reply_from=reply_from)


def check_mailboxes(mailboxes: tuple[Mailbox, ...]) -> None:
    names = [mailbox.name for mailbox in mailboxes]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise KeyProblem(None, f"[[mailboxes]]: the name {twice[0]!r} is given twice")
    seen: dict[str, str] = {}
    for mailbox in mailboxes:
        if mailbox.source_name in seen:
            raise KeyProblem(None, f'[[mailboxes]] "{mailbox.name}": the same account and folder as '
                                   f'"{seen[mailbox.source_name]}"')
        seen[mailbox.source_name] = mailbox.name
