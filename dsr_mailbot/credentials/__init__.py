"""Credentials for the mail servers: OAuth2 access tokens for IMAP and SMTP, refreshed from a stored refresh token.

``providers`` is the table of what each provider needs (endpoints, scopes,
which first-consent flow); ``tokens`` keeps a token file and refreshes it
(Authlib over httpx2); ``sasl`` builds the XOAUTH2 and OAUTHBEARER
initial responses; ``consent`` is ``dsr-mailbot auth login``.
"""
