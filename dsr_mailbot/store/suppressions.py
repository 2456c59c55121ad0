"""The suppression list: addresses that opted out while no system knew them (policy 4.1), kept only as hashes.

Each is the SHA-256 of the address's normal form, lower-case hex: the form
mailing tools load as a hashed suppression list (``suppressions export``).
The list concerns marketing only: a later ``users import`` of such an
address keeps marketing off; policy-change notices, which are legal notices,
follow the README's rule (everyone who has not withdrawn consent).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlmodel import Session, SQLModel, col, select

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.store.bulk import values_present
from dsr_mailbot.store.models import Suppression


def address_hash(address: str) -> str | None:
    """SHA-256 of the address's normal form, lower-case hex; None for what is not an address."""
    normal = normalise_address(address.strip())
    return _normal_hash(normal) if normal else None


def _normal_hash(normal: str) -> str:
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def suppress(session: Session, address: str, now: datetime) -> bool:
    """Put the address on the list; False when it was there already (or is not an address)."""
    digest = address_hash(address)
    if digest is None or session.get(Suppression, digest) is not None:
        return False
    session.add(Suppression(sha256=digest, created_at=now))
    return True


def is_suppressed(session: Session, address: str) -> bool:
    digest = address_hash(address)
    return digest is not None and session.get(Suppression, digest) is not None


def suppressed_hashes(session: Session, after: str = "", limit: int = 10_000) -> Iterator[str]:
    """The list in hash order, a page at a time (``after``: the last hash of the page before)."""
    yield from session.exec(select(Suppression.sha256).where(col(Suppression.sha256) > after)
                            .order_by(col(Suppression.sha256)).limit(limit)).all()


def suppressed_among(session: Session, addresses: Sequence[str]) -> set[str]:
    """Those of these addresses, each already in its normal form, that are on the list: one query.

    The normal form is a fixed point of :func:`normalise_address`, so its hash is the one :func:`address_hash`
    gives for any way of writing the address.
    """
    by_hash = {_normal_hash(address): address for address in addresses}
    found = values_present(session, SQLModel.metadata.tables["suppressions"], "sha256", list(by_hash))
    return {by_hash[digest] for digest in found}
