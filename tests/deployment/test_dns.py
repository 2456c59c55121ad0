"""The operator's domains as a real authoritative DNS server (a private NSD) serves them, read with dnspython."""

from __future__ import annotations

from collections.abc import Callable

from dsr_mailbot.deployment.dns import domain_findings, resolver_for
from dsr_mailbot.deployment.findings import Finding, Status
from tests.dns_server import AuthoritativeDns
from tests.servers import free_port

Zones = Callable[[dict[str, str]], AuthoritativeDns]

GOOD = ('@ IN MX 10 mx1\nmx1 IN A 192.0.2.25\n@ IN TXT "v=spf1 mx -all"\n'
        '_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@smarthings.kz"\n'
        # A 2048-bit key is longer than one character-string: the record is split in two, as DNS tools write it.
        'mail._domainkey IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" "7KxZ3vQwIDAQAB"\n')


def statuses(findings: list[Finding]) -> list[tuple[str, Status]]:
    return [(f.text.split(":")[0], f.status) for f in findings]


def test_a_domain_with_mx_spf_dmarc_and_dkim_passes(dns_zones: Zones) -> None:
    server = dns_zones({"smarthings.kz": GOOD, "smarththings.kz": "@ IN MX 10 mx.smarthings.kz.\n"})
    findings = domain_findings(resolver_for([server.nameserver]), ["smarthings.kz", "smarththings.kz"],
                               ["smarthings.kz"], "mail")
    assert statuses(findings) == [
        ("MX of smarthings.kz", Status.PASS), ("MX of smarththings.kz", Status.PASS),
        ("SPF of smarthings.kz", Status.PASS), ("DMARC of smarthings.kz (_dmarc.smarthings.kz)", Status.PASS),
        ("DKIM key mail._domainkey.smarthings.kz", Status.PASS)]


def test_no_spf_a_dmarc_at_p_none_and_no_selector(dns_zones: Zones) -> None:
    server = dns_zones({"smarthings.kz": '@ IN A 192.0.2.1\n_dmarc IN TXT "v=DMARC1; p=none"\n'})
    findings = domain_findings(resolver_for([server.nameserver]), ["smarthings.kz"], ["smarthings.kz"], None)
    assert [f.status for f in findings] == [Status.WARN, Status.FAIL, Status.WARN, Status.SKIPPED]
    assert "implicit MX" in findings[0].text and "p=none" in findings[2].text


def test_a_domain_that_does_not_exist_fails_every_record(dns_zones: Zones) -> None:
    server = dns_zones({"smarthings.kz": GOOD})
    findings = domain_findings(resolver_for([server.nameserver]), ["smarthings.kz", "nowhere.smarthings.kz"],
                               ["nowhere.smarthings.kz"], "mail")
    assert [f.status for f in findings] == [Status.PASS, Status.FAIL, Status.FAIL, Status.FAIL, Status.FAIL]


def test_a_resolver_that_does_not_answer_is_unreachable_not_a_verdict() -> None:
    findings = domain_findings(resolver_for([f"127.0.0.1:{free_port()}"]), ["smarthings.kz"], [], None)
    assert [f.status for f in findings] == [Status.UNREACHABLE]


def test_hostile_record_text_gets_a_verdict_and_is_shown_on_one_printable_line(dns_zones: Zones) -> None:
    # Whoever answers for the domain writes the text: a newline and terminal escapes where terms may hold them.
    server = dns_zones({"smarthings.kz": (
        '@ IN MX 10 mx1\nmx1 IN A 192.0.2.25\n@ IN TXT "v=spf1 -all\\010x=\\027[2J\\027[1A"\n'
        '_dmarc IN TXT "v=DMARC1; p=reject"\n'
        'mail._domainkey IN TXT "v=DKIM1; k=rsa\\027]0;owned\\007; p=MIIBIjANBgkqhkiG9w0B"\n')})
    findings = domain_findings(resolver_for([server.nameserver]), ["smarthings.kz"], ["smarthings.kz"], "mail")
    assert [f.status for f in findings] == [Status.PASS, Status.PASS, Status.PASS, Status.PASS]
    for finding in findings:
        assert finding.line().isprintable(), finding.line()
