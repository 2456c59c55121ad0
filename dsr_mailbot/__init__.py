"""dsr-mailbot: answers data-subject requests that arrive by e-mail.

The pipeline, one module per stage: :mod:`~dsr_mailbot.mailbox.source` →
:mod:`~dsr_mailbot.reading.parse` → :mod:`~dsr_mailbot.reading.classify` →
:mod:`~dsr_mailbot.trust.verify` → :mod:`~dsr_mailbot.intents.apply` →
:mod:`~dsr_mailbot.replies.reply` / :mod:`~dsr_mailbot.replies.send` →
:mod:`~dsr_mailbot.mailbox.archive`, orchestrated by :mod:`~dsr_mailbot.pipeline`.
Errors: :mod:`~dsr_mailbot.errors`.
"""

__version__ = "0.1.0"
