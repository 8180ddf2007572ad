"""One progress / cancellation API for every long computation.

Every long function in :mod:`glue_ssclump.core` takes ``progress: Progress | None``.
It calls :meth:`Progress.update` as work advances; ``update`` raises
:class:`Cancelled` as soon as the caller asked to stop, so cancellation is honoured at
the next update (one batch, one plane, one epoch step).  Front ends adapt it: the CLI
to a tqdm bar (:func:`tqdm_progress`), Qt to a worker thread's signal.

Stages nest: ``progress.span(0.0, 0.3)`` gives a child whose 0..1 maps to 0..0.3 of
the parent, so a pipeline (detect -> catalogue -> samples -> train) reports one bar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a computation when its caller asked it to stop."""


class Progress:
    """Progress reporting with cooperative cancellation.

    Parameters
    ----------
    callback : callable, optional
        ``callback(fraction, message)`` with ``fraction`` in [0, 1] of the whole task.
    cancel_event : threading.Event, optional
        When set, the next :meth:`update` or :meth:`check` raises :class:`Cancelled`.
    min_interval : float
        Callbacks closer together than this (seconds) are dropped, except the last
        one (fraction 1) so front ends are not flooded from hot loops.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        cancel_event: threading.Event | None = None,
        min_interval: float = 0.05,
        _lo: float = 0.0,
        _hi: float = 1.0,
        _root: Progress | None = None,
    ) -> None:
        self.callback = callback
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()
        self.min_interval = min_interval
        self._lo, self._hi = _lo, _hi
        self._root = _root if _root is not None else self
        self._last_emit = float("-inf")
        self.message = ""

    # -- cancellation -------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the computation to stop at its next update."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel_event.is_set():
            raise Cancelled("cancelled by the user")

    # -- reporting ----------------------------------------------------------------
    def update(self, fraction: float, message: str | None = None) -> None:
        """Report ``fraction`` (0..1) of this (sub-)task done; raise if cancelled."""
        self.check()
        fraction = min(max(float(fraction), 0.0), 1.0)
        if message is not None:
            self.message = message
        root = self._root
        if root.callback is None:
            return
        now = time.monotonic()
        total = self._lo + (self._hi - self._lo) * fraction
        if total < 1.0 and now - root._last_emit < root.min_interval:
            return
        root._last_emit = now
        root.callback(total, self.message)

    def span(self, lo: float, hi: float, message: str | None = None) -> Progress:
        """A child reporter covering ``lo..hi`` of this reporter's range."""
        a = self._lo + (self._hi - self._lo) * lo
        b = self._lo + (self._hi - self._lo) * hi
        child = Progress(
            self.callback, self.cancel_event, self.min_interval, _lo=a, _hi=b, _root=self._root
        )
        child.message = message if message is not None else self.message
        return child

    def iterate(self, items: Iterable[T], total: int | None = None,
                message: str | None = None) -> Iterator[T]:
        """Yield ``items`` while reporting progress (and honouring cancel) per item."""
        if total is None:
            total = len(items)  # type: ignore[arg-type]
        self.update(0.0, message)
        for i, item in enumerate(items):
            yield item
            self.update((i + 1) / max(total, 1))


def ensure_progress(progress: Progress | None) -> Progress:
    """Return ``progress`` or a silent, never-cancelled reporter."""
    return progress if progress is not None else Progress()


@contextmanager
def tqdm_progress(desc: str = "", disable: bool | None = None) -> Iterator[Progress]:
    """A :class:`Progress` drawn as a tqdm bar (percent, elapsed, ETA) on stderr."""
    from tqdm.auto import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", disable=disable,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}")
    state = {"n": 0}

    def callback(fraction: float, message: str) -> None:
        n = int(round(fraction * 1000))
        if n > state["n"]:
            bar.update(n - state["n"])
            state["n"] = n
        if message:
            bar.set_postfix_str(message, refresh=False)

    try:
        yield Progress(callback, min_interval=0.1)
    finally:
        bar.close()
