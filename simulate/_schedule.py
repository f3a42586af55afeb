r"""How the driver cuts a run into jitted calls: a budget of steps per call sized by wall time, the segments
of each call, and the SIGINT flag read between calls (:mod:`phasedyn.simulate._driver`).

A call advances every seed across ``chunk_size`` *segments*; a segment is the rest of a record interval
or the piece of it that the call's budget allows (statistics are kept at interval ends only). The steps
done are the same compiled update whatever the cut, with ``fold_in(key, k)`` randomness, so the cut
changes no result (tests/test_interrupt.py checks this bit for bit against random cuts).
"""

from __future__ import annotations

import signal
import threading

import numpy as np

CHUNK_SECONDS = 0.5
"""Wall time one jitted call aims at (:class:`Budget`), so that a SIGINT is answered within about this."""

FIRST_CHUNK_WORK = 100_000
"""The first call's steps times ``n_seeds`` times the size of :math:`x` (its cost is not known yet)."""

GROWTH = 4.0
"""The budget of steps grows at most by this factor from one call to the next."""


class Budget:
    r"""Steps per jitted call, sized so that one call takes about :data:`CHUNK_SECONDS` of wall time.

    The first call does ``FIRST_CHUNK_WORK / work_per_step`` steps (at least 1); after each call the budget
    becomes ``done * CHUNK_SECONDS / elapsed`` (the measured per-step cost), at most :data:`GROWTH` times the
    last (the first call's time includes compilation), and never below the last when a call ended early
    (at the end of a record interval or of the ``chunk_size`` intervals) and was fast. Results do not
    depend on it: the steps are the same whatever the cut (tests/test_interrupt.py).
    """

    def __init__(self, work_per_step: int, total: int) -> None:
        self.total = max(int(total), 1)
        self.steps = int(min(max(FIRST_CHUNK_WORK // max(work_per_step, 1), 1), self.total))

    def update(self, done: int, elapsed: float, limited: bool) -> None:
        """After a call that did ``done`` steps in ``elapsed`` s (``limited``: its budget ran out)."""
        if done <= 0:
            return
        proposal = done * CHUNK_SECONDS / max(elapsed, 1e-9)
        new = min(proposal, GROWTH * self.steps)
        if not limited and elapsed < CHUNK_SECONDS:
            new = max(new, self.steps)
        self.steps = int(min(max(new, 1), self.total))


def plan(
    targets: np.ndarray, pos: int, j: int, budget: int, size: int
) -> tuple[np.ndarray, np.ndarray, int, int, bool]:
    """The next call's ``size`` segments from step ``pos`` (next record interval end ``targets[j]``), at most
    ``budget`` steps: ``(lengths, ends, pos, j, limited)``. ``ends[i]`` is the index of the interval end that
    segment ``i`` reaches (-1: it stops inside an interval, or is padding of length 0)."""
    lengths, ends = np.zeros(size, np.int64), np.full(size, -1, np.int64)
    left, n = budget, 0
    while n < size and j < len(targets):
        r = int(targets[j]) - pos
        if r > left:
            if left > 0:
                lengths[n], pos, left, n = left, pos + left, 0, n + 1
            break
        lengths[n], ends[n] = r, j
        pos, left, j, n = pos + r, left - r, j + 1, n + 1
    return lengths, ends, pos, j, left == 0


class Interrupt:
    """SIGINT → a flag read after each call (a second SIGINT raises ``KeyboardInterrupt`` at once); the
    previous handler is restored on exit. Outside the main thread (no handler can be set) nothing changes."""

    def __enter__(self) -> "Interrupt":
        self.hit, self.installed = False, False
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.installed = True
        return self

    def _handle(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
