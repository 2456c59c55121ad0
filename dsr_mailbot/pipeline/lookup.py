"""Looking the sender up in the data map's other systems: after the message is read, before the decision.

"We hold no data" may be said only when every system was asked and none
had the person, so each SQL and HTTP system is asked here, outside any
transaction of the store (a slow system never holds its lock).  A system
that is down, or refuses the lookup, is named as unreachable: the decision
then waits for it (:mod:`dsr_mailbot.decisions`) when no other system knows
the person.  A wrong mapping (a table or column missing) is a configuration
error and stops the run (exit 78) before anything is changed anywhere.
"""

from __future__ import annotations

import logging

from dsr_mailbot.config.datamap import SqlSystem
from dsr_mailbot.errors import SystemRefused, SystemUnavailable
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.systems.protocol import Presence, SystemHold

log = logging.getLogger("dsr_mailbot")


def look_up(services: Services, address: str | None) -> Presence:
    """Ask every SQL and HTTP system whether it holds anything about the person at ``address`` (normal form)."""
    systems = services.config.external_systems
    if not systems or not address:
        return Presence()
    found: list[str] = []
    unreachable: list[str] = []
    holds: list[tuple[str, SystemHold]] = []
    for system in systems:
        try:
            answer = services.connector(system).lookup(address)
            if answer:
                found.append(system.name)
            if answer.hold is not None:
                holds.append((system.name, answer.hold))
        except (SystemUnavailable, SystemRefused) as exc:
            log.info("lookup on system %s failed (%s)", system.name, type(exc).__name__)
            unreachable.append(system.name)
    return Presence(tuple(s.name for s in systems), tuple(found), tuple(unreachable), tuple(holds))


def check_mappings(services: Services) -> set[str]:
    """Read every SQL system's tables anew and check the mapping (MappingError, exit 78, when it is wrong).

    The daemon does it when it starts, and a run before its first action: the
    shop may have changed its tables since.  Returns the systems that could
    not be reached to be checked.
    """
    unreachable: set[str] = set()
    for system in services.config.external_systems:
        if isinstance(system, SqlSystem):
            try:
                services.connector(system).reflect(again=True)
            except SystemUnavailable:
                unreachable.add(system.name)
    return unreachable
