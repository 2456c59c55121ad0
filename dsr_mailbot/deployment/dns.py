"""The mail records of the operator's domains, looked up with dnspython, then judged (:mod:`records`).

``[check] nameservers`` chooses the resolver (``"192.0.2.53"``, or with a
port, ``"127.0.0.1:5353"``, ``"[2001:db8::53]:53"``); without it, the
system's (``/etc/resolv.conf``).  A domain that does not exist, or has no
record of a kind, is an answer; a resolver that does not answer is
"unreachable" (exit 75).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsr_mailbot.config.sections import nameserver_address
from dsr_mailbot.deployment.findings import Finding, Status
from dsr_mailbot.deployment.records import Verdict, dkim_verdict, dmarc_verdict, mx_verdict, spf_verdict

TIMEOUT_SECONDS = 5.0


class Unanswered(Exception):
    """The resolver gave no answer (timeout, refused, no server): not a fact about the domain."""


def resolver_for(nameservers: Sequence[str]) -> Any:
    import dns.nameserver
    import dns.resolver

    if not nameservers:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*nameserver_address(server)) for server in nameservers]
    resolver.lifetime = TIMEOUT_SECONDS
    return resolver


def _texts(resolver: Any, name: str) -> list[str]:
    """TXT records of ``name``, each one string (its character-strings joined, RFC 7208 §3.3)."""
    return [b"".join(record.strings).decode("utf-8", "replace") for record in _answer(resolver, name, "TXT")]


def _answer(resolver: Any, name: str, kind: str) -> list[Any]:
    import dns.exception
    import dns.resolver

    try:
        return list(resolver.resolve(name, kind, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
        raise Unanswered(f"{kind} of {name}: no answer from the resolver ({type(exc).__name__})") from exc
    except dns.exception.DNSException as exc:
        raise Unanswered(f"{kind} of {name}: {type(exc).__name__}") from exc


def _finding(verdict: Verdict) -> Finding:
    return Finding("dns", verdict.status, verdict.text)


def domain_findings(resolver: Any, mail_domains: Sequence[str], reply_domains: Sequence[str],
                    dkim_selector: str | None) -> list[Finding]:
    """MX of every domain people write to; SPF, DMARC and the DKIM key of every domain replies come from."""
    findings: list[Finding] = []

    def look(check: Any) -> None:
        try:
            findings.append(_finding(check()))
        except Unanswered as exc:
            findings.append(Finding("dns", Status.UNREACHABLE, str(exc)))

    for domain in mail_domains:
        def mx(domain: str = domain) -> Verdict:
            exchanges = [(int(r.preference), r.exchange.to_text()) for r in _answer(resolver, domain, "MX")]
            has_address = bool(exchanges) or bool(_answer(resolver, domain, "A") or _answer(resolver, domain, "AAAA"))
            return mx_verdict(domain, exchanges, has_address)
        look(mx)
    for domain in reply_domains:
        look(lambda domain=domain: spf_verdict(domain, _texts(resolver, domain)))
        look(lambda domain=domain: dmarc_verdict(domain, _texts(resolver, f"_dmarc.{domain}")))
        if dkim_selector:
            look(lambda domain=domain: dkim_verdict(dkim_selector, domain,
                                                    _texts(resolver, f"{dkim_selector}._domainkey.{domain}")))
        else:
            findings.append(Finding("dns", Status.SKIPPED, f"DKIM key of {domain}: no [check] dkim_selector"))
    return findings
