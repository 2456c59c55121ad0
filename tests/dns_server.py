"""A real authoritative DNS server for the tests: a private NSD (Debian's ``nsd``) on a free port of 127.0.0.1.

Each instance serves the zones it is given, from its own directory, as
root without changing user (``username: ""``), like the private Dovecot.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port, terminate, wait_for_port

SOA = "@ 300 IN SOA ns1.test. hostmaster.test. 1 3600 600 86400 300\n@ 300 IN NS ns1.test.\n"


def nsd_binary() -> str | None:
    return shutil.which("nsd") or ("/usr/sbin/nsd" if Path("/usr/sbin/nsd").exists() else None)


class AuthoritativeDns:
    """NSD answering for ``zones`` (name → records in zone-file syntax, relative to the zone)."""

    def __init__(self, binary: str, zones: dict[str, str]) -> None:
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="dsr-nsd-"))
        self.port = free_port()
        lines = [
            "server:", f"  ip-address: 127.0.0.1@{self.port}", f"  port: {self.port}", '  username: ""',
            '  chroot: ""', f'  zonesdir: "{self.base}"', f'  pidfile: "{self.base}/nsd.pid"', '  database: ""',
            f'  zonelistfile: "{self.base}/zone.list"', f'  xfrdfile: "{self.base}/xfrd.state"',
            f'  xfrdir: "{self.base}"', f'  logfile: "{self.base}/nsd.log"', "  server-count: 1", "  do-ip6: no",
            "remote-control:", "  control-enable: no",
        ]
        for name, records in zones.items():
            (self.base / f"{name}.zone").write_text(f"$ORIGIN {name}.\n$TTL 300\n{SOA}{records}\n", encoding="utf-8")
            lines += ["zone:", f"  name: {name}", f"  zonefile: {name}.zone"]
        self.conf = self.base / "nsd.conf"
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def nameserver(self) -> str:
        """As ``[check] nameservers`` takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run([self.binary, "-c", str(self.conf)], check=True, capture_output=True)
        if not wait_for_port(self.port):
            log = (self.base / "nsd.log").read_text(errors="replace") if (self.base / "nsd.log").exists() else ""
            raise RuntimeError(f"nsd did not start on port {self.port}: {log[-2000:]}")

    def stop(self) -> None:
        pid_file = self.base / "nsd.pid"
        if pid_file.exists():
            terminate(int(pid_file.read_text().strip()))
        shutil.rmtree(self.base, ignore_errors=True)
