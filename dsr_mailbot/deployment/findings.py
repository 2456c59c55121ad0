"""What one check found, and the exit code of a whole check (sysexits: 0, 75, 78)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

EX_OK, EX_TEMPFAIL, EX_CONFIG = 0, 75, 78


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"  # works, but not as it should (DMARC p=none, no IDLE): exit 0 still
    FAIL = "fail"  # the configuration or the deployment is wrong: exit 78
    UNREACHABLE = "unreachable"  # a server could not be reached: exit 75, unless something failed
    SKIPPED = "skipped"  # does not apply to this configuration


@dataclass(frozen=True)
class Finding:
    area: str  # imap, smtp, store, systems, templates, acts, dns
    status: Status
    text: str  # what was checked and what was seen; names keys and hosts, never a secret or a person

    def line(self) -> str:
        # The text quotes servers and DNS records (anyone's words): a newline or a terminal escape in them is shown
        # escaped, so that no one can add a line of their own or rewrite the operator's terminal.
        text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in self.text)
        return f"{self.status.value.upper():<11} {self.area:<9} {text}"


def exit_code(findings: Sequence[Finding]) -> int:
    """78 when anything failed (a person must change something); else 75 when a server was unreachable; else 0."""
    statuses = {finding.status for finding in findings}
    if Status.FAIL in statuses:
        return EX_CONFIG
    if Status.UNREACHABLE in statuses:
        return EX_TEMPFAIL
    return EX_OK
