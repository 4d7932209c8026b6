"""The chain walked on every core: `idp audit verify` of ten million entries is mostly hashing,
and each entry stores the prev_hash it links to, so a segment of the chain can be checked
without the entries before it. Worker processes each read and check segments of
SEGMENT seqs on their own database connection; verify_chain joins the segments in seq order
(idp/audit/walk.py, ChainWalk), checking where each meets the last, so the first problem named
is the one a walk from the start would name.

A chain shorter than PARALLEL_FROM entries is walked in this process, as one segment: starting
processes costs more than it saves there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from multiprocessing import get_context

from sqlalchemy import Engine, create_engine, func, select

from idp.audit.walk import Segment, walk_segment
from idp.extensions import db
from idp.models import AuditEntry

# Entries from which the walk is spread over processes, and the seqs each segment covers.
PARALLEL_FROM = 400_000
SEGMENT = 250_000

log = logging.getLogger("idp.audit")


def walk_segments(start: int, heads: dict[int, tuple[int, str]]) -> Iterator[Segment]:
    """The chain from seq start on, walked as segments in seq order (stop reading at the
    first with a problem: the rest are cancelled). heads: seq -> (checkpoint id, head hash)
    of every signed checkpoint."""
    connection = db.session.connection()
    last = connection.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.seq >= start))
    span = 0 if last is None else last - start + 1
    workers = min(_cores(), -(-span // SEGMENT))
    if span < PARALLEL_FROM or workers < 2 or not _shared(db.engine):
        yield walk_segment(connection, start, None, heads, start - 1)
        return
    firsts = range(start, last + 1, SEGMENT)
    plans = []
    for first in firsts:
        # The last segment runs to the end: entries chained meanwhile are walked too.
        stop = None if first == firsts[-1] else first + SEGMENT
        within = {seq: head for seq, head in heads.items() if _within(seq, first, stop)}
        before = max((seq for seq in heads if seq < first), default=start - 1)
        plans.append((first, stop, within, before))
    url = db.engine.url.render_as_string(hide_password=False)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(walk_range, url, *plan) for plan in plans]
        try:
            for index, future in enumerate(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    # A worker died (killed, or its program could not be imported again, see
                    # idp/cli/__main__.py): this process walks the rest itself.
                    log.warning("audit verify: a worker process stopped; walking on in one")
                    for plan in plans[index:]:
                        yield walk_segment(connection, *plan)
                    return
        finally:
            for future in futures:
                future.cancel()


def walk_range(
    url: str, first: int, stop: int | None, heads: dict[int, tuple[int, str]], signed_before: int
) -> Segment:
    """In a worker process: walk the entries from first to before stop (to the end if None)."""
    with _engine(url).connect() as connection:
        return walk_segment(connection, first, stop, heads, signed_before)


def _within(seq: int, first: int, stop: int | None) -> bool:
    """Whether seq is in the segment from first to before stop (to the end if None)."""
    return first <= seq and (stop is None or seq < stop)


@cache
def _engine(url: str) -> Engine:
    """The worker's own connection to the database (one per process)."""
    return create_engine(url, hide_parameters=True)


def _cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _shared(engine: Engine) -> bool:
    """Whether other processes can open the same database (not an in-memory SQLite one)."""
    return engine.url.get_backend_name() != "sqlite" or engine.url.database not in (
        None,
        "",
        ":memory:",
    )
