"""The reply domain's mail records judged: MX, SPF (RFC 7208), DMARC (RFC 7489), DKIM keys (RFC 6376). Pure.

Replies from a domain without SPF and DMARC land in junk folders, and the
policy names two spellings of the support domain: ``dsr-mailbot check``
looks at them before the first reply goes out.  The records come from DNS
(:mod:`dsr_mailbot.deployment.dns`); here they are only read.  Every
pattern is linear: a record is text from the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dsr_mailbot.deployment.findings import Status

SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more DNS-querying terms make the record a permanent error
_SPF_MECHANISM = re.compile(
    r"[+\-~?]?(?:all|include:\S+|exists:\S+|ptr(?::\S+)?|a(?::[^\s/]+)?(?:/\d{1,2})?(?://\d{1,3})?"
    r"|mx(?::[^\s/]+)?(?:/\d{1,2})?(?://\d{1,3})?|ip4:(?P<ip4>[0-9.]+(?:/\d{1,2})?)"
    r"|ip6:(?P<ip6>[0-9A-Fa-f:.]+(?:/\d{1,3})?))",
    re.IGNORECASE,
)
_SPF_MODIFIER = re.compile(r"[A-Za-z][A-Za-z0-9\-_.]*=\S*")
_QUERYING = ("include", "exists", "ptr", "a", "mx", "redirect")  # the terms that cost a DNS query
_TERM_NAME = re.compile(r"[:/=]")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
_PERCENT = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True)
class Verdict:
    status: Status
    text: str


def _records(texts: Sequence[str], version: str) -> list[str]:
    """The TXT records of a kind (``v=spf1``, ``v=DMARC1``): the version tag, then a separator or the end."""
    return [t for t in texts if t[:len(version)].lower() == version.lower() and t[len(version):len(version) + 1]
            in ("", " ", ";", "\t")]


def spf_verdict(domain: str, texts: Sequence[str]) -> Verdict:
    records = _records(texts, "v=spf1")
    if not records:
        return Verdict(Status.FAIL, f"SPF of {domain}: no v=spf1 record; receivers cannot tell the bot's server "
                                    f"may send as {domain}")
    if len(records) > 1:
        return Verdict(Status.FAIL, f"SPF of {domain}: {len(records)} v=spf1 records (RFC 7208 §3.2: a permanent "
                                    f"error; keep one)")
    terms = records[0].split()[1:]
    querying = 0
    all_qualifier: str | None = None
    for term in terms:
        mechanism = _SPF_MECHANISM.fullmatch(term)
        if mechanism is None and _SPF_MODIFIER.fullmatch(term) is None:
            return Verdict(Status.FAIL, f"SPF of {domain}: cannot parse the term {term[:60]!r}")
        if mechanism is not None and not _addresses_valid(mechanism.group("ip4"), mechanism.group("ip6")):
            return Verdict(Status.FAIL, f"SPF of {domain}: not an address: {term[:60]!r}")
        bare = term.lstrip("+-~?").lower()
        querying += _TERM_NAME.split(bare, maxsplit=1)[0] in _QUERYING
        if bare == "all" and all_qualifier is None:
            all_qualifier = term[0] if term[0] in "+-~?" else "+"
    if querying > SPF_LOOKUP_LIMIT:
        return Verdict(Status.FAIL, f"SPF of {domain}: {querying} terms that query DNS, more than "
                                    f"{SPF_LOOKUP_LIMIT} (RFC 7208 §4.6.4)")
    if all_qualifier == "+":
        return Verdict(Status.WARN, f"SPF of {domain}: '+all' lets any server send as {domain}")
    if all_qualifier in (None, "?"):
        return Verdict(Status.WARN, f"SPF of {domain}: parsed, but it ends without -all or ~all "
                                    f"(mail from other servers is 'neutral')")
    return Verdict(Status.PASS, f"SPF of {domain}: {records[0][:120]}")


def _addresses_valid(ip4: str | None, ip6: str | None) -> bool:
    try:
        if ip4:
            ipaddress.IPv4Network(ip4, strict=False)
        if ip6:
            ipaddress.IPv6Network(ip6, strict=False)
    except ValueError:
        return False
    return True


def _tags(record: str) -> dict[str, str]:
    """A tag list (``k=v; k=v``, RFC 6376 §3.2, which DMARC uses too); a later duplicate does not win."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


DMARC_POLICIES = ("none", "quarantine", "reject")


def dmarc_verdict(domain: str, texts: Sequence[str]) -> Verdict:
    where = f"DMARC of {domain} (_dmarc.{domain})"
    records = _records(texts, "v=DMARC1")
    if not records:
        return Verdict(Status.FAIL, f"{where}: no v=DMARC1 record; large receivers junk such mail")
    if len(records) > 1:
        return Verdict(Status.FAIL, f"{where}: {len(records)} records (RFC 7489 §6.6.3: then none applies)")
    tags = _tags(records[0])
    policy = tags.get("p", "").lower()
    if policy not in DMARC_POLICIES:
        return Verdict(Status.FAIL, f"{where}: p= must be none, quarantine or reject, not {policy[:20]!r}")
    subdomains = tags.get("sp", policy).lower()
    if subdomains not in DMARC_POLICIES:
        return Verdict(Status.FAIL, f"{where}: sp= must be none, quarantine or reject, not {subdomains[:20]!r}")
    pct = tags.get("pct", "100")
    if _PERCENT.fullmatch(pct) is None or int(pct) > 100:  # ASCII digits only: str.isdigit() takes "²"
        return Verdict(Status.FAIL, f"{where}: pct= must be 0 to 100, not {pct[:20]!r}")
    if policy == "none":
        return Verdict(Status.WARN, f"{where}: p=none, monitoring only: receivers are not asked to act on "
                                    f"forged mail")
    return Verdict(Status.PASS, f"{where}: p={policy}")


def dkim_verdict(selector: str, domain: str, texts: Sequence[str]) -> Verdict:
    where = f"DKIM key {selector}._domainkey.{domain}"
    keys = [t for t in texts if "p=" in t.replace(" ", "")]
    if not keys:
        return Verdict(Status.FAIL, f"{where}: no key record")
    tags = _tags(keys[0])
    if "v" in tags and (tags["v"] != "DKIM1" or not keys[0].lstrip().lower().startswith("v")):
        return Verdict(Status.FAIL, f"{where}: v= must be DKIM1 and come first")
    key = tags.get("p", "")
    if not key:
        return Verdict(Status.FAIL, f"{where}: the key is empty (p=): revoked")
    if _BASE64.fullmatch(key) is None:
        return Verdict(Status.FAIL, f"{where}: the key is not base64")
    return Verdict(Status.PASS, f"{where}: {tags.get('k', 'rsa')} key present")


def mx_verdict(domain: str, exchanges: Sequence[tuple[int, str]], has_address: bool) -> Verdict:
    """Mail to the support addresses (both spellings) must be deliverable at all."""
    if len(exchanges) == 1 and exchanges[0][1].rstrip(".") == "":
        return Verdict(Status.FAIL, f"MX of {domain}: a null MX (RFC 7505): the domain takes no mail")
    if not exchanges:
        if has_address:
            return Verdict(Status.WARN, f"MX of {domain}: none; mail goes to its A/AAAA address (implicit MX)")
        return Verdict(Status.FAIL, f"MX of {domain}: none, and no address: mail to it cannot be delivered")
    hosts = ", ".join(f"{host.rstrip('.')} ({preference})" for preference, host in sorted(exchanges))
    return Verdict(Status.PASS, f"MX of {domain}: {hosts[:160]}")
