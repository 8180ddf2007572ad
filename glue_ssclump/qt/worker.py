"""Run a long core function on a QThread: progress, cancel, results and clear errors.

:class:`Worker` calls ``function(*args, progress=Progress, **kwargs)`` on its own
thread.  The :class:`~glue_ssclump.core.progress.Progress` callback emits
:attr:`Worker.progressed`, so widgets are only ever touched on the GUI thread (Qt
queues a signal emitted from another thread to the receiver's thread).  Anything else
the function wants to report (one record per training epoch, say) goes through
:meth:`Worker.report`, which emits :attr:`Worker.reported`.

The outcome is announced on the GUI thread *after* the thread has finished, by exactly
one of :attr:`Worker.succeeded`, :attr:`Worker.cancelled` or :attr:`Worker.failed`,
followed by :attr:`Worker.done`.  A function that stops by raising
:class:`~glue_ssclump.core.progress.Cancelled` gives ``cancelled(None)``; one that
returns a result whose ``cancelled`` attribute is true (``pipeline.verify`` after a
cancelled training) gives ``cancelled(result)``, so the caller can keep what was
completed.  Exceptions never leave the thread: they become ``failed(message,
details)``, and :func:`show_message` displays them in a message box that does not
block the event loop.

:class:`ProgressBinding` ties a worker to a progress bar, a status label (with elapsed
time and ETA) and a cancel button.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from glue.core.hub import HubListener
from glue_qt.utils import load_ui
from qtpy import QtCore, QtWidgets

from ..core.progress import Cancelled, Progress
from . import threads

log = logging.getLogger(__name__)

__all__ = [
    "ProgressBinding",
    "Worker",
    "describe_exception",
    "format_duration",
    "format_eta",
    "guarded",
    "show_message",
]

F = TypeVar("F", bound=Callable[..., Any])

# Exception types whose message is written for users (what went wrong and what to do).
_USER_ERRORS = (ValueError, OSError, ImportError, RuntimeError)


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """A message for a message box and the details (traceback) behind it.

    Parameters
    ----------
    exc : BaseException
        The exception (with its traceback, if it was raised).

    Returns
    -------
    message : str
        ``str(exc)`` for errors whose text is meant for users (``ValueError`` and its
        kin such as ``CheckpointError`` or ``CubeError``, ``OSError``), otherwise the
        exception type and text with a note that this is unexpected.
    details : str
        The formatted traceback.
    """
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, _USER_ERRORS):
        message = text
    else:
        message = (f"Unexpected error ({type(exc).__name__}): {text}\n\nThis looks like a "
                   "bug in glue-ssclump; the details below help to report it.")
    return message, details


def show_message(parent: QtWidgets.QWidget | None, level: str, title: str, text: str,
                 details: str | None = None) -> QtWidgets.QMessageBox:
    """Show a message box without blocking the event loop.

    The box is window-modal to ``parent`` but opened with ``open()`` rather than
    ``exec_()``, so a training that is still running keeps reporting, and tests can
    inspect and close it.

    Parameters
    ----------
    parent : QWidget or None
        The dialog the message is about.
    level : {'information', 'warning', 'critical'}
        Icon of the box.
    title, text : str
        Window title and message.
    details : str, optional
        Extra text behind a "Show Details..." button (a traceback, say).

    Returns
    -------
    QMessageBox
        The open box (deleted when closed).
    """
    icons = {"information": QtWidgets.QMessageBox.Information,
             "warning": QtWidgets.QMessageBox.Warning,
             "critical": QtWidgets.QMessageBox.Critical}
    box = QtWidgets.QMessageBox(icons.get(level, QtWidgets.QMessageBox.Information), title,
                                text, QtWidgets.QMessageBox.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(QtCore.Qt.WA_DeleteOnClose)
    box.open()
    log.log(logging.ERROR if level == "critical" else logging.INFO, "%s: %s", title, text)
    return box


def guarded(title: str) -> Callable[[F], F]:
    """Decorate a widget method (a slot) so an exception becomes a message box.

    An exception escaping a Qt slot under PyQt5 can terminate the application; a
    guarded slot instead logs it and shows ``title`` with the message on ``self``.

    Parameters
    ----------
    title : str
        Title of the message box.
    """
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user, never re-raised
                message, details = describe_exception(exc)
                log.exception("%s", title)
                report = getattr(self, "show_message", None)
                if callable(report):
                    report("critical", title, message, details)
                else:
                    show_message(self, "critical", title, message, details)
                return None
        return wrapper  # type: ignore[return-value]
    return decorate


def format_duration(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (or ``h:mm:ss``)."""
    seconds = max(int(round(seconds)), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_eta(elapsed: float, fraction: float) -> str:
    """Elapsed time and the remaining time extrapolated from ``fraction`` done.

    Parameters
    ----------
    elapsed : float
        Seconds since the start.
    fraction : float
        Share of the work done, 0..1.

    Returns
    -------
    str
        e.g. ``"0:42 elapsed, about 1:10 left"``; no estimate before 2 % or 2 s.
    """
    text = f"{format_duration(elapsed)} elapsed"
    if 0.02 <= fraction < 1.0 and elapsed >= 2.0:
        left = elapsed * (1.0 - fraction) / fraction
        text += f", about {format_duration(left)} left"
    return text


class Worker(QtCore.QThread):
    """Run ``function(*args, progress=..., **kwargs)`` on a thread of its own.

    Parameters
    ----------
    function : callable
        A core function taking a ``progress`` keyword (:class:`Progress`).  It must not
        touch Qt widgets or glue objects; it may call :meth:`report` from its thread.
    *args, **kwargs
        Passed to ``function``.
    parent : QObject, optional
        Qt parent.
    min_interval : float
        Smallest time between two progress signals (seconds).
    report_kwarg : str, optional
        Pass :meth:`report` to ``function`` under this keyword (e.g. ``"on_epoch"``),
        so the function's callback becomes the :attr:`reported` signal.

    Notes
    -----
    Signals (all delivered on the GUI thread):

    ``progressed(float, str)``
        Fraction done (0..1) and the current step.
    ``reported(object)``
        Whatever the function passed to :meth:`report`.
    ``succeeded(object)``
        The function's return value.
    ``cancelled(object)``
        ``None`` when the function raised ``Cancelled``; the returned result when it
        returned one with ``cancelled`` true.
    ``failed(str, str)``
        Message and details (traceback) of an exception.
    ``done()``
        Emitted last, after exactly one of the three outcomes.
    """

    progressed = QtCore.Signal(float, str)
    reported = QtCore.Signal(object)
    succeeded = QtCore.Signal(object)
    cancelled = QtCore.Signal(object)
    failed = QtCore.Signal(str, str)
    done = QtCore.Signal()

    def __init__(self, function: Callable[..., Any], *args: Any,
                 parent: QtCore.QObject | None = None, min_interval: float = 0.05,
                 report_kwarg: str | None = None, **kwargs: Any) -> None:
        super().__init__(parent)
        self._function = function
        self._args = args
        self._kwargs = kwargs
        if report_kwarg:
            self._kwargs[report_kwarg] = self.report
        self.progress = Progress(self._emit_progress, min_interval=min_interval)
        self.started_at: float | None = None
        self.finished_at: float | None = None  # the function returned (worker thread)
        # Public outcome, set on the GUI thread just before the outcome signal.
        self.outcome: str | None = None  # 'succeeded', 'cancelled' or 'failed'
        self.result: Any = None
        self.error: tuple[str, str] | None = None
        self._outcome: tuple[str, Any, tuple[str, str] | None] | None = None
        self.finished.connect(self._dispatch)

    # -- control (GUI thread) -----------------------------------------------------------
    def start(self, priority: QtCore.QThread.Priority = QtCore.QThread.InheritPriority
              ) -> None:
        """Start the thread (once); :mod:`~glue_ssclump.qt.threads` keeps it alive."""
        if self.started_at is not None:
            raise RuntimeError("a Worker runs once; make a new one to run again")
        self.started_at = time.perf_counter()
        threads.start(self, priority)

    def cancel(self) -> None:
        """Ask the function to stop at its next progress update (thread-safe)."""
        self.progress.cancel()

    def request_stop(self) -> None:
        """Cancel (what :func:`glue_ssclump.qt.threads.stop_all` calls at exit)."""
        self.cancel()

    @property
    def is_cancelling(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.progress.cancelled

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start` (until the thread finished)."""
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else time.perf_counter()
        return end - self.started_at

    def stop(self, timeout_ms: int = 60000) -> bool:
        """Cancel and wait for the thread (application exit); True if it ended."""
        if not self.isRunning():
            return True
        self.cancel()
        return bool(self.wait(timeout_ms))

    # -- the thread ---------------------------------------------------------------------
    def report(self, item: Any) -> None:
        """Emit :attr:`reported` with ``item`` (call from the function, any thread)."""
        self.reported.emit(item)

    def _emit_progress(self, fraction: float, message: str) -> None:
        self.progressed.emit(float(fraction), str(message))

    def run(self) -> None:  # the worker thread
        try:
            result = self._function(*self._args, progress=self.progress, **self._kwargs)
        except Cancelled:
            self._outcome = ("cancelled", None, None)
        except Exception as exc:  # noqa: BLE001 - reported through `failed`
            self._outcome = ("failed", None, describe_exception(exc))
        else:
            kind = "cancelled" if getattr(result, "cancelled", False) is True else "succeeded"
            self._outcome = (kind, result, None)
        finally:
            self.finished_at = time.perf_counter()

    def _dispatch(self) -> None:  # GUI thread, after the thread has finished
        self.outcome, self.result, self.error = self._outcome or (
            "failed", None, ("the task stopped unexpectedly", ""))
        try:
            if self.outcome == "succeeded":
                self.succeeded.emit(self.result)
            elif self.outcome == "cancelled":
                self.cancelled.emit(self.result)
            else:
                message, details = self.error or ("the task stopped unexpectedly", "")
                self.failed.emit(message, details)
        finally:
            self.done.emit()


class ProgressBinding(QtCore.QObject):
    """Drive a progress bar, a status label and a cancel button from a :class:`Worker`.

    Parameters
    ----------
    worker : Worker
    bar : QProgressBar
        Shows the fraction done (0..1000).
    label : QLabel
        Shows the current step with elapsed time and ETA.
    cancel_button : QAbstractButton, optional
        Enabled while the worker runs; clicking it cancels.
    final_text : bool
        Write "done / cancelled / failed after m:ss" into ``label`` at the end; False
        when the caller writes its own summary there.
    """

    def __init__(self, worker: Worker, bar: QtWidgets.QProgressBar, label: QtWidgets.QLabel,
                 cancel_button: QtWidgets.QAbstractButton | None = None,
                 final_text: bool = True) -> None:
        super().__init__(worker)
        self.worker, self.bar, self.label, self.cancel_button = worker, bar, label, cancel_button
        self.final_text = final_text
        self.fraction = 0.0
        self.message = ""
        bar.setRange(0, 1000)
        bar.setValue(0)
        label.setText("starting…")
        worker.progressed.connect(self._on_progress)
        worker.done.connect(self._on_done)
        if cancel_button is not None:
            cancel_button.setEnabled(True)
            cancel_button.clicked.connect(self.cancel)
        # ETA and elapsed time advance between progress updates too.
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._refresh)
        self._timer.start()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.fraction = fraction
        if message:
            self.message = message
        self.bar.setValue(int(round(1000 * fraction)))
        self._refresh()

    def _refresh(self) -> None:
        if self.worker.is_cancelling:
            text = "cancelling: stopping after the current batch…"
        else:
            text = format_eta(self.worker.elapsed, self.fraction)
            if self.message:
                text = f"{self.message} — {text}"
        self.label.setText(text)

    def cancel(self) -> None:
        """Cancel the worker (as the cancel button does)."""
        self.worker.cancel()
        if self.cancel_button is not None:
            self.cancel_button.setEnabled(False)
        self._refresh()

    def _on_done(self) -> None:
        self._timer.stop()
        if self.cancel_button is not None:
            self.cancel_button.setEnabled(False)
            self.cancel_button.clicked.disconnect(self.cancel)
        if self.worker.outcome == "succeeded":
            self.bar.setValue(1000)
        if self.final_text:
            outcome = {"succeeded": "done", "cancelled": "cancelled",
                       "failed": "failed"}.get(self.worker.outcome or "", "stopped")
            self.label.setText(f"{outcome} after {format_duration(self.worker.elapsed)}")


class WorkerDialogMixin:
    """Closing rules of a dialog that runs a :class:`Worker` and listens to the hub.

    Closing while a run is going cancels it and closes once the thread has ended (a
    ``QThread`` must not be destroyed while running); closing otherwise unsubscribes
    from the data collection's hub.  The dialog provides the
    ``_on_succeeded`` / ``_on_cancelled`` / ``_on_failed`` / ``_on_done`` slots and a
    ``.ui`` file with ``progress_bar``, ``label_status`` and ``button_cancel``.
    """

    def _init_dialog(self, session: Any, data_collection: Any, parent: Any,
                     ui_file: str, state: Any) -> None:
        """The constructor steps both dialogs share: Qt and hub bases, the ``.ui``
        file (from this package's folder), ``session``, ``data_collection``, ``state``,
        an idle ``worker`` and progress bar, and the closing flags."""
        QtWidgets.QDialog.__init__(self, parent)
        HubListener.__init__(self)
        self.session = session
        self.data_collection = data_collection
        self.ui = load_ui(ui_file, self, directory=os.path.dirname(__file__))
        self.state = state
        self.worker = None
        self._close_requested = False
        self._subscribed = False  # register_to_hub sets it
        self.ui.progress_bar.setRange(0, 1000)
        self.ui.progress_bar.setValue(0)
        self.ui.button_cancel.setEnabled(False)

    @property
    def is_running(self) -> bool:
        """True while the dialog's worker runs."""
        return self.worker is not None and self.worker.outcome is None \
            and self.worker.started_at is not None

    def _start_worker(self, worker: Worker) -> None:
        """Connect ``worker`` to the dialog's ``_on_succeeded``, ``_on_cancelled``,
        ``_on_failed`` and ``_on_done`` slots and to its progress bar, status label and
        Cancel button, then start it.  ``worker`` must have no Qt parent: a running
        thread must not be deleted along with the dialog."""
        worker.succeeded.connect(self._on_succeeded)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        worker.done.connect(self._on_done)
        self._binding = ProgressBinding(worker, self.ui.progress_bar, self.ui.label_status,
                                        self.ui.button_cancel, final_text=False)
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop at its next progress update (as Cancel does)."""
        if self.is_running:
            self._binding.cancel()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self.is_running:
            self._close_requested = True
            self.cancel()
            event.ignore()
            return
        self.unregister(self.data_collection.hub)
        self._subscribed = False
        super().closeEvent(event)

    def reject(self) -> None:
        self.close()
