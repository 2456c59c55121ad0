"""dsr-mailbot: answers data-subject requests that arrive by e-mail.

The pipeline, one module per stage: :mod:`~dsr_mailbot.source` →
:mod:`~dsr_mailbot.parse` → :mod:`~dsr_mailbot.classify` →
:mod:`~dsr_mailbot.verify` → :mod:`~dsr_mailbot.apply` →
:mod:`~dsr_mailbot.reply` / :mod:`~dsr_mailbot.send` →
:mod:`~dsr_mailbot.archive`, orchestrated by :mod:`~dsr_mailbot.pipeline`.
Errors: :mod:`~dsr_mailbot.errors`.
"""

__version__ = "0.1.0"
