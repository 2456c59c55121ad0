"""A test hook that kills the process at a named point, to prove that a crash anywhere loses nothing.

Set ``DSR_MAILBOT_TEST_CRASH_AT`` to a point name — ``after_fetch``,
``after_apply_commit``, ``after_smtp_accept``, ``before_archive`` — and the
process sends itself SIGKILL the first time it reaches that point: no
``finally``, no ``atexit``, no flush, exactly like ``kill -9`` or the OOM
killer.  ``point:text`` kills only while handling a message whose Message-ID
contains ``text`` (a poison message).  Nothing else reads the variable; unset,
:func:`crash_point` is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "DSR_MAILBOT_TEST_CRASH_AT"
POINTS = frozenset({"after_fetch", "after_apply_commit", "after_smtp_accept", "before_archive"})


def crash_point(name: str, message_id: str = "") -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, match = wanted.partition(":")
    if point == name and (not match or match in message_id):
        os.kill(os.getpid(), signal.SIGKILL)
