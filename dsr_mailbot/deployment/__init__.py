"""``dsr-mailbot check``: the whole deployment, before the first run, a clear line for each part.

``findings`` (what a check says, and the exit code of them all), ``records``
(SPF, DMARC and DKIM records judged: pure), ``dns`` (the reply domain's
records, looked up with dnspython), ``checks`` (the mailbox, SMTP, the
store, the systems, the templates, the acts directory).
"""
