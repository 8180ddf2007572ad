"""Run a long core function in a child process, with progress, callbacks and cancel.

A function running on a thread of the GUI process shares the GIL with the event loop:
whatever holds the GIL in one piece (an import compiling modules, a scipy call, a numpy
reduction over a big array) stalls the interface for as long. In a child process it
cannot. :func:`run_in_child` is the bridge: the caller's :class:`Progress` sees the
child's progress and its cancel reaches the child; named callbacks (one record per
training epoch, say) are called in the parent; the return value or the exception comes
back as if the function had run here.

The child is started with the ``spawn`` method (a fresh interpreter), never ``fork``:
forking a process that runs Qt, OpenMP or CUDA threads can deadlock the child.
Arguments and results travel by pickle, so the function must be importable by name.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue as queue_module
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .progress import Cancelled, Progress

__all__ = ["WorkerProcessError", "run_in_child"]

#: Seconds a cancelled child gets to stop by itself (and return what it finished)
#: before it is terminated.
CANCEL_GRACE_S = 60.0
_POLL_S = 0.1


class WorkerProcessError(RuntimeError):
    """The child process ended without a result (killed, out of memory, crashed)."""


class _RemoteTraceback(Exception):
    """Carries the child's formatted traceback as the ``__cause__`` of its exception."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n(in the child process)\n{self.text}"


def _send(channel: Any, kind: str, payload: Any) -> None:
    # Pickled here with the plain pickler: the queue's own (multiprocessing's
    # ForkingPickler, into which torch registers its reductions) would move tensors to
    # shared memory handed over by a server in this process, which is gone by the time
    # the parent reads a result sent just before the child exits.
    channel.put((kind, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)))


def _exit_with_parent(parent_pid: int) -> None:
    """End this process when its parent is gone (killed: nobody waits for the result)."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _child_main(channel: Any, cancel_event: Any, function: Callable[..., Any],
                args: tuple, kwargs: dict, forward: tuple[str, ...],
                min_interval: float, parent_pid: int) -> None:
    """The child's entry point: run ``function`` and send back what happens."""
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    def send_progress(fraction: float, message: str) -> None:
        _send(channel, "progress", (fraction, message))

    kwargs = dict(kwargs)
    for name in forward:
        kwargs[name] = (lambda item, _name=name: _send(channel, "callback", (_name, item)))
    progress = Progress(send_progress, cancel_event=cancel_event, min_interval=min_interval)
    try:
        result = function(*args, progress=progress, **kwargs)
    except Cancelled:
        _send(channel, "cancelled", None)
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - an exception that cannot travel is described
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        _send(channel, "error", (exc, text))
    else:
        _send(channel, "result", result)


def run_in_child(function: Callable[..., Any], *args: Any, progress: Progress | None = None,
                 forward: Sequence[str] = (), **kwargs: Any) -> Any:
    """Call ``function(*args, progress=..., **kwargs)`` in a fresh child process.

    Parameters
    ----------
    function : callable
        An importable (module-level) function taking a ``progress`` keyword.
    *args, **kwargs
        Its arguments (pickled to the child).
    progress : Progress, optional
        Receives the child's progress; cancelling it cancels the child, which stops at
        its next progress update (and is terminated if it has not stopped
        :data:`CANCEL_GRACE_S` seconds later).
    forward : sequence of str
        Keyword arguments in ``kwargs`` that are callbacks: the child gets a stand-in
        that sends each call's argument back, and the parent calls the real callback
        with it (on the thread that called :func:`run_in_child`).

    Returns
    -------
    The function's return value (a copy, unpickled).

    Raises
    ------
    Cancelled
        The function raised :class:`Cancelled` (or was terminated after a cancel).
    WorkerProcessError
        The child ended without a result (killed, out of memory, a crash).
    Exception
        Whatever the function raised, with the child's traceback as its cause.
    """
    callbacks: Mapping[str, Callable[[Any], None]] = {name: kwargs.pop(name) for name in forward}
    ctx = mp.get_context("spawn")
    channel = ctx.Queue()
    cancel_event = ctx.Event()
    interval = progress.min_interval if progress is not None else 0.05
    child = ctx.Process(target=_child_main, name="glue-ssclump worker", daemon=True,
                        args=(channel, cancel_event, function, args, kwargs,
                              tuple(callbacks), interval, os.getpid()))
    child.start()
    cancelled_at: float | None = None
    finished = False
    try:
        while True:
            if progress is not None and progress.cancelled and cancelled_at is None:
                cancel_event.set()
                cancelled_at = time.monotonic()
            try:
                kind, blob = channel.get(timeout=_POLL_S)
            except queue_module.Empty:
                if not child.is_alive():
                    if cancelled_at is not None:
                        raise Cancelled("cancelled by the user") from None
                    raise WorkerProcessError(
                        f"the worker process ended without a result (exit code "
                        f"{child.exitcode}); it may have run out of memory: try fewer "
                        "candidates or a smaller batch size") from None
                if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                    child.terminate()
                    raise Cancelled("cancelled by the user (the worker was stopped)") from None
                continue
            payload = pickle.loads(blob)
            finished = kind in ("result", "cancelled", "error")
            if kind == "progress":
                if progress is not None and not progress.cancelled:
                    try:
                        progress.update(*payload)
                    except Cancelled:  # cancelled meanwhile: the next loop tells the child
                        pass
            elif kind == "callback":
                name, item = payload
                callbacks[name](item)
            elif kind == "result":
                return payload
            elif kind == "cancelled":
                raise Cancelled("cancelled by the user")
            else:  # "error"
                exc, text = payload
                raise exc from _RemoteTraceback(text)
    finally:
        # A child that has sent its outcome only has to exit (interpreter shutdown can
        # take seconds under load): do not make the caller wait for it. It is a daemon,
        # reaped by the next multiprocessing call or at exit. One that has not sent its
        # outcome (the caller stopped waiting: an exception here) is stopped.
        if not finished:
            child.terminate()
        child.join(timeout=0.5 if finished else 10.0)
        channel.close()
