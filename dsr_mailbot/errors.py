"""The one exception tree of dsr-mailbot.

Expected outcomes of a request (not understood, unknown sender, ignored, …)
are values, never exceptions.  Exceptions are for the edges: bad
configuration, and the servers the bot talks to::

    DsrMailbotError                 base of everything raised on purpose
    ├── ConfigError                 the configuration file is missing, malformed or wrong;
    │   │                           the message names the key (exit code 78)
    │   └── CredentialsRefused      … or the OAuth2 provider refused the refresh token (consent
    │                               revoked): 'dsr-mailbot auth login' again; ``answer`` is its word
    ├── CredentialsUnavailable      the OAuth2 provider's token endpoint cannot be reached now
    ├── TemplateError               a reply template is missing or does not render
    ├── StoreError                  the database failed
    │   ├── StoreConflict           … a unique key was taken (another process recorded it first)
    │   └── StoreUnavailable        … in a way that may pass (connection refused, locked)
    ├── SourceError                 the mailbox (IMAP or Maildir) failed
    │   └── SourceUnavailable       … in a way that may pass (connection lost, timeout)
    ├── SendError                   the SMTP server refused or failed
    │   └── SendUnavailable         … in a way that may pass (4xx, connection refused)
    └── DataSystemError             a system of the data map ([[systems]]) failed an action
        ├── SystemRefused           … for good (an HTTP 4xx, a constraint): the request goes to review
        └── SystemUnavailable       … in a way that may pass (down, timeout, 5xx, 429); retry_after when told

    MappingError (a ConfigError)    a table or column of the data map is not in the database (exit 78)

Library exceptions are translated at the adapter that called the library,
with ``raise … from exc``.  Messages carry identifiers (a UID, a request id,
a config key) and never personal data: they end up in logs and in cron mail.

``temporary`` tells the caller whether retrying later can help; the
command line maps it to exit code 75 (``EX_TEMPFAIL``).
"""

from __future__ import annotations


class DsrMailbotError(Exception):
    """Base class of every error dsr-mailbot raises on purpose."""

    temporary: bool = False


class ConfigError(DsrMailbotError):
    """Raised when the configuration is missing, malformed or names a wrong key."""


class CredentialsRefused(ConfigError):
    """Raised when the OAuth2 provider refuses the refresh token: only a person's new consent can help."""

    def __init__(self, message: str, *, answer: str) -> None:
        super().__init__(message)
        self.answer = answer  # the provider's error code and description, bounded and on one line


class CredentialsUnavailable(DsrMailbotError):
    """Raised when the OAuth2 provider's token endpoint cannot be reached or fails (5xx); retry later."""

    temporary = True


class TemplateError(DsrMailbotError):
    """Raised when a reply template is missing or fails to render."""


class StoreError(DsrMailbotError):
    """Raised when a database operation fails for a reason a retry will not fix."""


class StoreConflict(StoreError):
    """Raised when a row with the same unique key exists (e.g. another process recorded the request)."""


class StoreUnavailable(StoreError):
    """Raised when the database cannot be reached or is locked; retry later."""

    temporary = True


class SourceError(DsrMailbotError):
    """Raised when the mailbox refuses an operation (bad login, no such folder)."""


class SourceUnavailable(SourceError):
    """Raised when the mailbox cannot be reached or the connection drops; retry later."""

    temporary = True


class SendError(DsrMailbotError):
    """Raised when the SMTP server permanently refuses a reply."""


class SendUnavailable(SendError):
    """Raised when the SMTP server is unreachable or answers 4xx; the reply stays queued."""

    temporary = True


class RecipientDeferred(SendError):
    """Raised when the SMTP server defers one recipient (4xx to RCPT TO): that reply stays queued, the others go.

    Not a passing fault of the service (the server takes other mail), so not
    ``temporary``: the drain goes on with the next reply.
    """


class MappingError(ConfigError):
    """Raised when the data map names a table or column the system does not have; the message names both."""


class DataSystemError(DsrMailbotError):
    """Raised when a system of the data map fails an action for a reason a retry will not fix."""


class SystemRefused(DataSystemError):
    """Raised when a system refuses an action for good (HTTP 4xx, a database constraint); a person decides."""


class SystemUnavailable(DataSystemError):
    """Raised when a system cannot be reached or asks to be retried; ``retry_after`` seconds when it said so,
    ``status`` the HTTP status it answered with."""

    temporary = True
    retry_after: float | None = None
    status: int | None = None


def where_raised(exc: BaseException) -> str:
    """``TypeName at file.py:123``: what a log line may say of an unexpected exception.

    Its text may quote personal data (a value it failed on); its type and the place it was raised are enough
    to find it.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    place = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
    return f"{type(exc).__name__}{place}"
