"""Reading the reply domain's SPF, DMARC, DKIM and MX records: what passes, what warns, what fails."""

from __future__ import annotations

import pytest

from dsr_mailbot.deployment.findings import Status
from dsr_mailbot.deployment.records import dkim_verdict, dmarc_verdict, mx_verdict, spf_verdict

D = "smarthings.kz"


@pytest.mark.parametrize(("texts", "status", "said"), [
    (["v=spf1 mx include:_spf.google.com -all"], Status.PASS, "v=spf1 mx"),
    (["google-site-verification=abc", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all"], Status.PASS, "ip4"),
    (["v=spf1 a:mail.smarthings.kz/24 mx redirect=_spf.smarthings.kz"], Status.WARN, "without -all or ~all"),
    (["v=spf1 +all"], Status.WARN, "any server"),
    (["v=spf1 mx all"], Status.WARN, "any server"),
    ([], Status.FAIL, "no v=spf1 record"),
    (["v=spf10 -all"], Status.FAIL, "no v=spf1 record"),
    (["v=spf1 -all", "v=spf1 mx -all"], Status.FAIL, "2 v=spf1 records"),
    (["v=spf1 ip4:999.1.1.1 -all"], Status.FAIL, "not an address"),
    (["v=spf1 mx:: -all?"], Status.FAIL, "cannot parse"),
    (["v=spf1 " + " ".join(f"include:s{n}.example" for n in range(11)) + " -all"], Status.FAIL, "11 terms"),
])
def test_spf(texts: list[str], status: Status, said: str) -> None:
    verdict = spf_verdict(D, texts)
    assert (verdict.status, said in verdict.text) == (status, True), verdict.text


def test_an_spf_record_built_to_backtrack_is_read_in_linear_time() -> None:
    # A term of 100,000 characters that almost matches: the patterns have no nested repetition.
    verdict = spf_verdict(D, ["v=spf1 a:" + "a/" * 50_000 + " -all"])
    assert verdict.status == Status.FAIL


@pytest.mark.parametrize(("texts", "status", "said"), [
    (["v=DMARC1; p=reject; rua=mailto:dmarc@smarthings.kz"], Status.PASS, "p=reject"),
    (["v=DMARC1;p=quarantine;pct=50"], Status.PASS, "p=quarantine"),
    (["v=DMARC1; p=none"], Status.WARN, "monitoring only"),
    ([], Status.FAIL, "no v=DMARC1 record"),
    (["v=DMARC1; p=reject", "v=DMARC1; p=none"], Status.FAIL, "2 records"),
    (["v=DMARC1; rua=mailto:x@y"], Status.FAIL, "p= must be"),
    (["v=DMARC1; p=reject; sp=block"], Status.FAIL, "sp= must be"),
    (["v=DMARC1; p=reject; pct=150"], Status.FAIL, "pct="),
    # Text from the network: a "digit" str.isdigit() takes and int() refuses; more digits than int() reads.
    (["v=DMARC1; p=reject; pct=\u00b2"], Status.FAIL, "pct= must be 0 to 100"),
    (["v=DMARC1; p=reject; pct=" + "9" * 5000], Status.FAIL, "pct= must be 0 to 100"),
])
def test_dmarc(texts: list[str], status: Status, said: str) -> None:
    verdict = dmarc_verdict(D, texts)
    assert (verdict.status, said in verdict.text) == (status, True), verdict.text


@pytest.mark.parametrize(("texts", "status", "said"), [
    (["v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ"], Status.PASS, "rsa key present"),
    (["k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="], Status.PASS, "ed25519"),
    (["v=DKIM1; p="], Status.FAIL, "revoked"),
    (["k=rsa; v=DKIM1; p=abc"], Status.FAIL, "come first"),
    (["v=DKIM1; p=not*base64"], Status.FAIL, "not base64"),
    ([], Status.FAIL, "no key record"),
])
def test_dkim(texts: list[str], status: Status, said: str) -> None:
    verdict = dkim_verdict("mail", D, texts)
    assert (verdict.status, said in verdict.text) == (status, True), verdict.text


def test_mx() -> None:
    assert mx_verdict(D, [(20, "mx2.smarthings.kz."), (10, "mx1.smarthings.kz.")], True).text == (
        "MX of smarthings.kz: mx1.smarthings.kz (10), mx2.smarthings.kz (20)")
    assert mx_verdict(D, [], True).status == Status.WARN
    assert mx_verdict(D, [], False).status == Status.FAIL
    assert mx_verdict(D, [(0, ".")], True).status == Status.FAIL
