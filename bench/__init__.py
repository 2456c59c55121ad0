"""Runnable benchmarks; each prints its figures.  Run from the repository root as ``python -m bench.<name>``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.servers import Dovecot, dovecot_binary


def started_dovecot() -> Dovecot:
    """A private Dovecot, as the tests start it (needs root and dovecot-imapd)."""
    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("dovecot is not installed (apt-get install dovecot-imapd)")
    dovecot = Dovecot(binary)
    dovecot.start()
    return dovecot


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: int  # the process's own peak resident set (VmHWM), not its parent's carried over by fork
    returncode: int


# Runs the command line in this interpreter, then writes VmHWM to the file named by the first argument.
_MEASURED = """
import sys
from pathlib import Path

out, sys.argv = sys.argv[1], ["dsr-mailbot", *sys.argv[2:]]
try:
    from dsr_mailbot.cli import main
    main()
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
else:
    code = 0
status = Path("/proc/self/status").read_text()
Path(out).write_text(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
sys.exit(code)
"""


def run_measured(args: list[str]) -> Measured:
    """``dsr-mailbot ARGS`` as a fresh process: its wall time, its own peak RSS and its exit code."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "peak"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _MEASURED, str(out), *args], check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - started
        if not out.exists():
            raise SystemExit(f"the measured process failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
        return Measured(seconds, int(out.read_text()) // 1024, done.returncode)
