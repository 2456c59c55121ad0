"""Runnable benchmarks; each prints its figures.  Run from the repository root as ``python -m bench.<name>``."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # as the tests use it: trust auth


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards whatever happens."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    database = f"dsr_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: int  # the process's own peak resident set (VmHWM), not its parent's carried over by fork
    returncode: int
    output: str  # its standard output, when asked for (else empty)
    error: str  # the last of its standard error


# Runs ``python -m MODULE ARGS`` in this interpreter, then writes VmHWM to a file: Linux carries the parent's peak
# at fork into ru_maxrss, so the process reads its own.
_MEASURED = """
import runpy, sys
from pathlib import Path

out, module, sys.argv = sys.argv[1], sys.argv[2], sys.argv[2:]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else 1
else:
    code = 0
status = Path("/proc/self/status").read_text()
Path(out).write_text(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
sys.exit(code)
"""


def run_measured(module: str, args: list[str], *, output: bool = False) -> Measured:
    """``python -m MODULE ARGS`` as a fresh process: its wall time, its own peak RSS, its exit code (and, with
    ``output``, its standard output; without, it goes to /dev/null: an export writes gigabytes)."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "peak"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _MEASURED, str(out), module, *args], check=False,
                              stdout=subprocess.PIPE if output else subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - started
        error = done.stderr.decode(errors="replace")[-3000:]
        if not out.exists():
            raise SystemExit(f"python -m {module} {' '.join(args[:3])}… failed ({done.returncode}):\n{error}")
        return Measured(seconds, int(out.read_text()) // 1024, done.returncode,
                        done.stdout.decode(errors="replace").strip() if output else "", error)
