"""The initial client responses of SASL XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER (RFC 7628).

Pure functions: the transports send them (smtplib base64-encodes them;
imapclient builds its own for IMAP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

OAUTHBEARER, XOAUTH2 = "OAUTHBEARER", "XOAUTH2"


def xoauth2(user: str, token: str) -> str:
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _saslname(user: str) -> str:
    # RFC 5801 §4: in the GS2 header, "," and "=" of the authorization identity are escaped.
    return user.replace("=", "=3D").replace(",", "=2C")


def oauthbearer(user: str, host: str, port: int, token: str) -> str:
    return f"n,a={_saslname(user)},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"


def chosen_mechanism(offered: Iterable[str]) -> str | None:
    """OAUTHBEARER, the standard, where the server offers it; else XOAUTH2; None when it offers neither."""
    names = {name.upper() for name in offered}
    for mechanism in (OAUTHBEARER, XOAUTH2):
        if mechanism in names:
            return mechanism
    return None


def responder(mechanism: str, user: str, host: str, port: int, token: str) -> Callable[..., str]:
    """smtplib's ``authobject``: the initial response first; to a server's error challenge, the empty response
    that ends the exchange (RFC 7628 §3.2.3), so that the server answers 535 instead of waiting."""
    initial = oauthbearer(user, host, port, token) if mechanism == OAUTHBEARER else xoauth2(user, token)

    def answer(challenge: bytes | None = None) -> str:
        return initial if challenge is None else ("\x01" if mechanism == OAUTHBEARER else "")

    return answer
