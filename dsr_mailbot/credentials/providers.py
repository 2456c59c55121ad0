"""What each OAuth2 provider needs, as data: its endpoints, the scopes for IMAP and for SMTP, and its consent flow.

Read by ``[imap.oauth2]`` / ``[smtp.oauth2]`` (``provider = …``).  The
device-code flow (RFC 8628) is used where the provider allows it for mail
scopes (Microsoft); the others get the loopback flow (RFC 8252: a browser,
and a redirect to 127.0.0.1).  ``generic`` takes its endpoints and scope
from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Use = Literal["imap", "smtp"]


@dataclass(frozen=True)
class Provider:
    name: str
    authorization_endpoint: str | None  # the loopback flow's; None: the configuration gives it (generic)
    token_endpoint: str | None
    device_authorization_endpoint: str | None  # set: the device-code flow is used for the first consent
    scopes: dict[str, str]  # by use ("imap", "smtp"); refresh tokens need offline access where it is a scope
    # Extra query parameters of the authorization URL: Google gives a refresh token only with access_type=offline,
    # and only on a consent screen (prompt=consent) when the user has consented before.
    authorization_params: tuple[tuple[str, str], ...] = ()
    display: str = ""


MICROSOFT_LOGIN = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"

PROVIDERS: dict[str, Provider] = {
    "microsoft": Provider(
        name="microsoft",
        authorization_endpoint=MICROSOFT_LOGIN + "/authorize",
        token_endpoint=MICROSOFT_LOGIN + "/token",
        device_authorization_endpoint=MICROSOFT_LOGIN + "/devicecode",
        scopes={"imap": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
                "smtp": "https://outlook.office.com/SMTP.Send offline_access"},
        display="Microsoft 365",
    ),
    "google": Provider(
        name="google",
        authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
        token_endpoint="https://oauth2.googleapis.com/token",
        device_authorization_endpoint=None,  # Google's device flow does not allow the mail scope
        scopes={"imap": "https://mail.google.com/", "smtp": "https://mail.google.com/"},
        authorization_params=(("access_type", "offline"), ("prompt", "consent")),
        display="Google Workspace",
    ),
    "yandex": Provider(
        name="yandex",
        authorization_endpoint="https://oauth.yandex.ru/authorize",
        token_endpoint="https://oauth.yandex.ru/token",
        device_authorization_endpoint=None,
        scopes={"imap": "mail:imap_full", "smtp": "mail:smtp"},
        display="Yandex 360",
    ),
    "generic": Provider(
        name="generic",
        authorization_endpoint=None,
        token_endpoint=None,
        device_authorization_endpoint=None,
        scopes={},
        display="the OAuth2 provider",
    ),
}
