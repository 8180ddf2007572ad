"""Keep background ``QThread`` objects alive until they end; stop them all at exit.

A ``QThread`` object destroyed while its thread still runs aborts the process
("QThread: Destroyed while thread is still running").  Widgets that start threads can
be closed or deleted at any time, so every background thread of glue-ssclump (the
training and detection :class:`~glue_ssclump.qt.worker.Worker`, the viewer's index
builds and its render thread) is started through :func:`start`: this module holds a
reference to it until it has finished.

:func:`stop_all` asks each running thread to stop (its ``request_stop()`` method, if
it has one: a worker cancels, the render thread drops its queue) and waits for all of
them.  It runs when the Qt application is about to quit and at interpreter exit (where
scripts and tests end without an event loop); a test can also call it.
"""

from __future__ import annotations

import atexit
import time
from typing import Any

from qtpy import QtCore

__all__ = ["running", "start", "stop_all", "wait_all"]

#: Threads started through :func:`start` that have not been released yet.
_RUNNING: set[QtCore.QThread] = set()
_quit_hooked = False


def start(thread: QtCore.QThread,
          priority: QtCore.QThread.Priority = QtCore.QThread.InheritPriority) -> None:
    """Start ``thread`` and keep a reference to it until it has finished.

    Parameters
    ----------
    thread : QThread
        Best without a Qt parent, so that deleting a widget cannot delete it.
    priority : QThread.Priority
        Passed to ``QThread.start``.
    """
    global _quit_hooked
    if not _quit_hooked:
        app = QtCore.QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(stop_all)
            _quit_hooked = True
    if thread not in _RUNNING:
        _RUNNING.add(thread)
        thread.finished.connect(lambda: _release(thread))
    QtCore.QThread.start(thread, priority)


def _release(thread: QtCore.QThread) -> None:  # GUI thread, once the thread finished
    try:
        thread.wait()  # `finished` is emitted just before the thread really ends
    except RuntimeError:  # its C++ object is already gone
        pass
    _RUNNING.discard(thread)


def _is_running(thread: QtCore.QThread) -> bool:
    try:
        return bool(thread.isRunning())
    except RuntimeError:  # its C++ object is already gone
        return False


def running() -> list[QtCore.QThread]:
    """The threads started through :func:`start` that are still running."""
    return [t for t in list(_RUNNING) if _is_running(t)]


def wait_all(timeout_ms: int = 60_000) -> bool:
    """Wait for every running thread to end.

    Parameters
    ----------
    timeout_ms : int
        Longest wait, for all the threads together.

    Returns
    -------
    bool
        True if none is running any more.
    """
    deadline = time.monotonic() + timeout_ms / 1000.0
    for thread in running():
        left = max(int((deadline - time.monotonic()) * 1000), 0)
        try:
            thread.wait(left)
        except RuntimeError:
            pass
    return not running()


def stop_all(timeout_ms: int = 120_000) -> bool:
    """Ask every running thread to stop, then wait for them (see :func:`wait_all`).

    A thread stops early if it has a ``request_stop()`` method; one without it (an
    index build) is waited for.

    Returns
    -------
    bool
        True if none is running any more.
    """
    for thread in running():
        request: Any = getattr(thread, "request_stop", None)
        if callable(request):
            try:
                request()
            except RuntimeError:
                pass
    return wait_all(timeout_ms)


# At interpreter exit without a Qt event loop (scripts, tests) aboutToQuit never fires;
# a QThread still running when Python destroys it would abort the process.
atexit.register(stop_all)
