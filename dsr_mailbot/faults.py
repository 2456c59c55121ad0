"""A test hook that kills the process at a named point, to prove that a crash anywhere loses nothing.

Set ``DSR_MAILBOT_TEST_CRASH_AT`` to a point name — ``after_fetch``,
``after_apply_commit``, ``after_smtp_accept``, ``before_archive`` — and the
process sends itself SIGKILL the first time it reaches that point: no
``finally``, no ``atexit``, no flush, exactly like ``kill -9`` or the OOM
killer.  ``point:text`` kills only while handling a message whose Message-ID
contains ``text`` (a poison message); ``point#N`` kills the N-th time the
point is reached (halfway through a campaign).  Nothing else reads the
variable; unset, :func:`crash_point` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "DSR_MAILBOT_TEST_CRASH_AT"
# The points a run passes (tests/test_faults.py kills it at each), and those only a campaign passes.
POINTS = frozenset({"after_fetch", "after_apply_commit", "after_smtp_accept", "before_archive", "after_send_commit"})
CAMPAIGN_POINTS = frozenset({"after_notice_batch", "after_notices_written"})
_reached: dict[str, int] = {}


def crash_point(name: str, message_id: str = "") -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, match = wanted.partition(":")
    point, _, nth = point.partition("#")
    if point != name or (match and match not in message_id):
        return
    _reached[name] = _reached.get(name, 0) + 1
    if not nth or _reached[name] == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
