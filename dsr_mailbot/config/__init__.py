"""Loading and checking the TOML configuration, declared as pydantic models.

Every key is documented in ``config.example.toml``.  The loader is strict:
an unknown key, a missing required key or a value of the wrong type raises
:class:`~dsr_mailbot.errors.ConfigError` with a message that names the key,
such as ``[imap] port: expected an integer, got 'abc'``.  Relative paths are
resolved against the directory of the configuration file, so a config works
the same from cron (whose working directory is ``$HOME``) and from a shell.

- ``fields``: strict scalars, anchored paths, secrets (``key``, ``key_file``
  or ``key_env``, read once and never logged);
- ``sections``: one model per table; ``policy``: ``[policy]``; ``web``: the console's;
- ``load``: the whole :class:`Config`, and the messages of mistakes.
"""

from dsr_mailbot.config.load import Config, load_config, parse_config
from dsr_mailbot.config.policy import PolicyConfig
from dsr_mailbot.config.sections import (
    DEFAULT_OPERATOR_ADDRESSES,
    LANGUAGES,
    DaemonConfig,
    DatabaseConfig,
    FileDeliveryConfig,
    ImapConfig,
    LimitsConfig,
    MaildirConfig,
    Security,
    SmtpConfig,
    TrustConfig,
    Verification,
)
from dsr_mailbot.config.web import WebConfig, WebOperator

__all__ = [
    "DEFAULT_OPERATOR_ADDRESSES",
    "LANGUAGES",
    "Config",
    "DaemonConfig",
    "DatabaseConfig",
    "FileDeliveryConfig",
    "ImapConfig",
    "LimitsConfig",
    "MaildirConfig",
    "PolicyConfig",
    "Security",
    "SmtpConfig",
    "TrustConfig",
    "Verification",
    "WebConfig",
    "WebOperator",
    "load_config",
    "parse_config",
]
