"""Was the sender authenticated by the operator's own mail server? (pure)

An ``Authentication-Results`` header (RFC 8601) is only as trustworthy as
whoever wrote it, and a sender can write any header they like.  Two rules
keep forged ones out:

1. only headers whose authserv-id is the configured ``[trust] authserv_id``
   count;
2. only headers the operator's server added count: those **above** the
   topmost ``Received`` header that names that server (``by <authserv_id>``),
   or, when no Received names it, above the topmost Received.  Everything
   below that line came from outside, where anyone can write anything.  A
   message without any Received header never passed a mail server, and
   none of its headers count.

This needs the operator's MX to do what RFC 8601 §5 asks (remove incoming
headers with its own authserv-id) and to insert its header at the top, as
OpenDMARC, rspamd and Exchange do; the README says so.

Authenticated means DMARC ``pass``, or DKIM ``pass`` for a domain aligned
with the From address (the same domain or a parent of it).  Anything that
cannot be parsed counts as not authenticated, never as a pass.  Headers are
parsed with ``authres`` (the parser dkimpy-milter uses); a header it rejects
is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import authres

_FEATURES = authres.all_features()
_BY_HOST = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)


@dataclass(frozen=True)
class AuthCheck:
    authenticated: bool
    summary: str  # e.g. "dmarc=pass" or "no trusted header": method=result pairs, no personal data


def trusted_results(items: Sequence[tuple[str, str]], authserv_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, result, properties) of the trusted Authentication-Results headers."""
    authserv_id = authserv_id.lower()
    received = [i for i, (name, _v) in enumerate(items) if name == "received"]
    if not received:
        return []  # mail that never passed a mail server (put into the mailbox directly) proves nothing
    ours = [i for i in received if _received_by(items[i][1]) == authserv_id]
    boundary = ours[0] if ours else received[0]
    found: list[tuple[str, str, dict[str, str]]] = []
    for name, value in items[:boundary]:
        if name != "authentication-results":
            continue
        try:
            header = _FEATURES.parse(f"Authentication-Results: {value}")
        except Exception:  # noqa: S112 - authres raises its own SyntaxError, among others; unparseable is untrusted
            continue
        if str(header.authserv_id).lower() != authserv_id:
            continue
        for result in header.results:
            props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
            found.append((str(result.method).lower(), str(result.result).lower(), props))
    return found


def _received_by(value: str) -> str | None:
    match = _BY_HOST.search(value)
    return match.group(1).lower().rstrip(".") if match else None


def _aligned(signing_domain: str, from_domain: str) -> bool:
    signing_domain = signing_domain.lower().rstrip(".")
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def check_authentication(
    items: Sequence[tuple[str, str]], authserv_id: str | None, from_address: str | None
) -> AuthCheck:
    if not authserv_id:
        return AuthCheck(False, "no trusted authserv-id configured")
    if not from_address or "@" not in from_address:
        return AuthCheck(False, "no single From address")
    results = trusted_results(items, authserv_id)
    if not results:
        return AuthCheck(False, "no trusted header")
    from_domain = from_address.rsplit("@", 1)[1].lower()
    summary = " ".join(sorted({f"{method}={result}" for method, result, _p in results}))
    for method, result, props in results:
        if method == "dmarc" and result == "pass":
            header_from = props.get("header.from", from_domain).lower()
            if header_from == from_domain:
                return AuthCheck(True, summary)
        if method == "dkim" and result == "pass":
            domain = props.get("header.d") or props.get("header.i", "").lstrip("@").split("@")[-1]
            if domain and _aligned(domain, from_domain):
                return AuthCheck(True, summary)
    return AuthCheck(False, summary)
