"""Many more fuzz cases than CI runs: mutated corpus mail through full passes on real servers.

Runs ``tests/test_fuzz.py`` (Dovecot, the SMTP server, SQLite and PostgreSQL)
with ``DSR_FUZZ_CASES`` cases per database for each seed, and prints the
cases per second next to the reference: the same number of unmutated corpus
messages through the same passes.

Run from the repository root, as root:  .venv/bin/python -m bench.fuzz [--cases 5000] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def run(cases: int, seed: int, mutate: bool) -> tuple[bool, float, str]:
    env = {**os.environ, "DSR_FUZZ_CASES": str(cases), "DSR_FUZZ_SEED": str(seed), "CI": "true",
           "DSR_FUZZ_UNMUTATED": "" if mutate else "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "3600",
                             "tests/test_fuzz.py"], env=env, capture_output=True, text=True, check=False)
    last = (result.stdout.strip().splitlines() or [""])[-1]
    return result.returncode == 0, time.monotonic() - started, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    ok, reference, _ = run(args.cases, args.seeds[0], mutate=False)
    print(f"reference: {2 * args.cases} unmutated corpus messages in {reference:.1f} s "
          f"({2 * args.cases / reference:.0f} msg/s){'' if ok else ' FAILED'}")
    failed = False
    for seed in args.seeds:
        ok, seconds, last = run(args.cases, seed, mutate=True)
        failed |= not ok
        print(f"seed {seed}: {2 * args.cases} mutated messages in {seconds:.1f} s "
              f"({2 * args.cases / seconds:.0f} msg/s): {'ok' if ok else 'FAILED: ' + last}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
