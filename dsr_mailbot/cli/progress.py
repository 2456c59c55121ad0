"""Progress of a long job (``users import``, ``audit export``, ``run --once`` on a backlog) on stderr, only when
stderr is a terminal: cron mail, pipes and logs get none of it, and stdout stays the job's output alone."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
Advance = Callable[[int], None]


@contextmanager
def progress_on_stderr(description: str, total: int | None = None) -> Iterator[Advance]:
    """``advance(n)`` moves the bar by ``n``; without a terminal on stderr it does nothing."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def counted(items: Iterable[T], advance: Advance) -> Iterator[T]:
    for item in items:
        advance(1)
        yield item
