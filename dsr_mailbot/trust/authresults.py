"""Was the sender authenticated by the operator's own mail server? (pure)

An ``Authentication-Results`` header (RFC 8601) is only as trustworthy as
whoever wrote it, and a sender can write any header they like.  The rules:

1. **Position, never names.**  Only headers **above the topmost**
   ``Received`` line are the operator's server's (``[trust]
   own_received_lines`` moves the boundary down past that many of the
   operator's own delivery hops, e.g. 1 when Dovecot's LMTP adds a line on
   top).  A ``Received`` line lower down, whatever host it names, came from
   outside and never moves the boundary.  A message with no ``Received``
   line never passed a mail server, and none of its headers count.
2. Only headers whose authserv-id is the configured ``[trust] authserv_id``
   count.
3. Header values are the raw text the server wrote: never RFC 2047-decoded
   (an encoded word inside them is text, never structure).
4. **DMARC decides when it spoke.**  ``dmarc=pass`` counts only with a
   ``header.from`` equal to the From domain (both in the normal form of
   :mod:`addresses`); a ``dmarc=pass`` without ``header.from`` proves
   nothing.  An explicit ``dmarc=fail`` from our server vetoes any DKIM
   pass.  Without a DMARC verdict (none, or no result), a DKIM ``pass`` whose ``header.d`` is the
   From domain or a parent of it (relaxed alignment, RFC 7489 §3.1.1) counts.

This needs the operator's MX to do what RFC 8601 §5 asks (remove incoming
headers with its own authserv-id) and to insert its header above its
``Received`` line, as OpenDMARC, rspamd and Exchange do; the README says so.
Anything that cannot be parsed counts as not authenticated, never as a
pass.  Headers are parsed with ``authres`` (the parser dkimpy-milter uses);
a header it rejects is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import authres

from dsr_mailbot.addresses import normalise_domain

_FEATURES = authres.all_features()
MAX_RESULTS_HEADER_CHARS = 8192  # longer is not a header any MX writes


@dataclass(frozen=True)
class AuthCheck:
    authenticated: bool
    summary: str  # e.g. "dmarc=pass" or "no trusted header": method=result pairs, no personal data


@dataclass(frozen=True)
class AuthResult:
    method: str
    result: str
    properties: dict[str, str]


def trusted_results(
    items: Sequence[tuple[str, str]], authserv_id: str, own_received_lines: int = 0
) -> list[AuthResult]:
    """The results of the Authentication-Results headers the operator's server wrote."""
    authserv_id = authserv_id.lower()
    received = [i for i, (name, _v) in enumerate(items) if name == "received"]
    if len(received) <= own_received_lines:
        return []  # mail that never passed the operator's MX (put into the mailbox directly) proves nothing
    boundary = received[own_received_lines]
    found: list[AuthResult] = []
    for name, value in items[:boundary]:
        if name != "authentication-results" or len(value) > MAX_RESULTS_HEADER_CHARS:
            continue
        try:
            header = _FEATURES.parse(f"Authentication-Results: {value}")
        except Exception:  # noqa: S112 - authres raises its own SyntaxError, among others; unparseable is untrusted
            continue
        if str(header.authserv_id).lower() != authserv_id:
            continue
        for result in header.results:
            props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
            found.append(AuthResult(str(result.method).lower(), str(result.result).lower(), props))
    return found


def _aligned(signing_domain: str, from_domain: str) -> bool:
    return from_domain == signing_domain or from_domain.endswith("." + signing_domain)


def check_authentication(
    items: Sequence[tuple[str, str]], authserv_id: str | None, from_address: str | None, own_received_lines: int = 0
) -> AuthCheck:
    """Did the operator's server authenticate ``from_address`` (already in the normal form of :mod:`addresses`)?"""
    if not authserv_id:
        return AuthCheck(False, "no trusted authserv-id configured")
    if not from_address or "@" not in from_address:
        return AuthCheck(False, "no single From address")
    results = trusted_results(items, authserv_id, own_received_lines)
    if not results:
        return AuthCheck(False, "no trusted header")
    from_domain = from_address.rsplit("@", 1)[1]
    summary = " ".join(sorted({f"{r.method}={r.result}" for r in results}))[:200]
    dmarc = [r for r in results if r.method == "dmarc" and r.result != "none"]
    if dmarc:
        if any(r.result != "pass" for r in dmarc):
            return AuthCheck(False, summary)  # an explicit fail (or error) vetoes every pass
        passed = any(normalise_domain(r.properties.get("header.from", "")) == from_domain for r in dmarc)
        return AuthCheck(passed, summary)
    # No DMARC verdict (none: the domain publishes no policy): an aligned DKIM signature still proves the domain.
    for r in results:
        if r.method == "dkim" and r.result == "pass":
            domain = normalise_domain(r.properties.get("header.d", ""))
            if domain and _aligned(domain, from_domain):
                return AuthCheck(True, summary)
    return AuthCheck(False, summary)
