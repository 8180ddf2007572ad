"""Off-GUI-thread rendering of the verification figure, with prefetching.

A full matplotlib redraw of the five panels (three WCSAxes, two spectra) costs over a
hundred milliseconds of CPU, far more than computing a candidate's cut-out. So the
figure is drawn by :class:`~glue_ssclump.qt.figure.FastVerificationFigure` (the same
picture without a full redraw: cached page, WCS ticks computed directly, text drawn
from cached bitmaps), by a worker thread, into images, and the viewer only displays
them:

* the current candidate is rendered first; then the next ones in the navigation
  order (and the previous one), so that by the time the user has judged a candidate
  the next image is usually ready and switching is just showing it;
* the GUI thread never draws, so it stays responsive while a render runs;
* requests replace each other (holding a key down does not queue renders).

The worker owns its own ``Figure`` / ``FigureCanvasAgg`` (matplotlib's font cache is
per thread) and a private copy of the WCS; it reads the cube's numpy arrays, never
glue objects. Results carry a key that says what they show (candidate, margins,
pixel size, cube generation); stale ones are dropped by the viewer.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy import QtCore, QtGui, QtWidgets
from qtpy.QtCore import Qt

from . import threads
from .candidates import candidate_views
from .figure import CubeGeometry, FastVerificationFigure, VerificationFigure

__all__ = ["FigureView", "ImageCache", "RenderJob", "RenderWorker"]

#: Figure resolution at a device pixel ratio of 1 (points scale with it on HiDPI).
DPI = 100


@dataclass(frozen=True)
class RenderJob:
    """Everything the worker needs to draw one candidate (no glue objects).

    Attributes
    ----------
    key : tuple
        Identifies the image: ``(generation, clump_id, margin_frac, margin_min, width,
        height, device_pixel_ratio)``.
    cid : int
        The candidate id.
    box : tuple of slice
        Its bounding box.
    peak : tuple of int or None
        Peak voxel (x, y, z) from the catalogue.
    v_peak, v_cen : float or None
        Peak and centroid velocities (km/s) from the catalogue.
    """

    key: tuple
    cid: int
    box: tuple
    peak: tuple | None
    v_peak: float | None
    v_cen: float | None

    @property
    def generation(self) -> int:
        return int(self.key[0])

    @property
    def margins(self) -> tuple[float, int]:
        return float(self.key[2]), int(self.key[3])

    @property
    def size(self) -> tuple[int, int, float]:
        return int(self.key[4]), int(self.key[5]), float(self.key[6])


class RenderWorker(QtCore.QThread):
    """A thread that renders :class:`RenderJob` objects into ``QImage`` objects.

    Started at once through :func:`glue_ssclump.qt.threads.start`, which keeps it alive
    until it ends (an application closed without closing the viewer stops it at exit).

    Notes
    -----
    ``rendered(key, image_or_exception, wall_s, cpu_s)``
        Delivered on the GUI thread: the image (or the exception that stopped it),
        with the wall-clock and render-thread CPU seconds it took.
    """

    rendered = QtCore.Signal(object, object, float, float)
    # From the render thread to this object (which lives in the GUI thread): queued.
    _result = QtCore.Signal(object, object, float, float)

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self._jobs: list[RenderJob] = []
        self._cube: tuple[int, np.ndarray, np.ndarray, CubeGeometry] | None = None
        self._busy: RenderJob | None = None
        self._stopped = False
        # Results sent by the render thread that the GUI thread has not received yet.
        self._in_flight = 0
        #: Draw with FastVerificationFigure; False: a full matplotlib redraw of the
        #: WCSAxes figure (the earlier way, kept for side-by-side benchmarks).
        self.fast = True
        self._result.connect(self._deliver)
        threads.start(self)

    # -- GUI thread API ----------------------------------------------------------------

    def set_cube(self, generation: int, intensity: np.ndarray, mask: np.ndarray,
                 geometry: CubeGeometry) -> None:
        """Use this cube for jobs of this generation (older jobs are dropped)."""
        geo = copy.copy(geometry)
        # wcslib structures are not safe to share between threads.
        geo.wcs = None if geometry.wcs is None else geometry.wcs.deepcopy()
        with self._cond:
            self._cube = (generation, intensity, mask, geo)
            self._jobs = [j for j in self._jobs if j.generation == generation]
            self._cond.notify()

    def submit(self, jobs: list[RenderJob]) -> None:
        """Replace the queue: render these, in this order (the first one is shown)."""
        with self._cond:
            self._jobs = list(jobs)
            self._cond.notify()

    def pending(self) -> list[tuple]:
        """Keys queued or being rendered."""
        with self._cond:
            keys = [j.key for j in self._jobs]
            if self._busy is not None:
                keys.insert(0, self._busy.key)
            return keys

    @property
    def idle(self) -> bool:
        """Nothing queued or being rendered, and every result delivered (GUI thread)."""
        with self._cond:
            return self._busy is None and not self._jobs and self._in_flight == 0

    @property
    def is_alive(self) -> bool:
        """The render thread is running (False once :meth:`stop` has ended it)."""
        try:
            return bool(self.isRunning())
        except RuntimeError:  # its C++ object is already gone
            return False

    def request_stop(self) -> None:
        """Drop the queue and end the thread after the current render (no wait)."""
        with self._cond:
            self._stopped = True
            self._jobs = []
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the current render and end the thread."""
        self.request_stop()
        if QtCore.QThread.currentThread() is not self and self.is_alive:
            self.wait(int(timeout * 1000))

    def _deliver(self, key: tuple, result: object, wall: float, cpu: float) -> None:
        with self._cond:
            self._in_flight -= 1
        self.rendered.emit(key, result, wall, cpu)

    # -- worker thread -----------------------------------------------------------------

    def run(self) -> None:  # the render thread
        # One figure per drawing method (see ``fast``), created on first use.
        figures: dict[bool, tuple[Figure, FastVerificationFigure | VerificationFigure]] = {}
        setup_for: dict[bool, tuple] = {}
        while True:
            with self._cond:
                while not self._stopped and not self._jobs:
                    self._cond.wait()
                if self._stopped:
                    return
                job = self._jobs.pop(0)
                cube = self._cube
                if cube is None or cube[0] != job.generation:
                    continue
                self._busy = job
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                generation, intensity, mask, geo = cube
                width, height, ratio = job.size
                fast = bool(self.fast)
                if fast not in figures:
                    figure = Figure(dpi=DPI)
                    FigureCanvasAgg(figure)
                    figures[fast] = (figure, FastVerificationFigure(figure) if fast
                                     else VerificationFigure(figure))
                figure, vfig = figures[fast]
                if setup_for.get(fast) != (generation, id(geo)):
                    vfig.setup(geo)
                    setup_for[fast] = (generation, id(geo))
                figure.set_dpi(DPI * ratio)
                figure.set_size_inches(width / DPI, height / DPI)
                margin_frac, margin_min = job.margins
                views = candidate_views(intensity, mask, job.cid, job.box,
                                        margin_frac=margin_frac, margin_min=margin_min,
                                        peak_xyz=job.peak, channel_width=geo.channel_width)
                vfig.show(views, job.v_peak, job.v_cen)
                if isinstance(vfig, FastVerificationFigure):
                    vfig.draw()
                else:
                    figure.canvas.draw()
                rgba = np.asarray(figure.canvas.buffer_rgba())
                h, w = rgba.shape[:2]
                pixels = rgba.tobytes()  # kept alive until the QImage owns a copy
                image = QtGui.QImage(pixels, w, h, 4 * w, QtGui.QImage.Format_RGBA8888).copy()
                image.setDevicePixelRatio(ratio)
                result: object = image
            except Exception as exc:  # shown by the viewer, never kills the thread
                result = exc
            finally:
                wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
                with self._cond:
                    self._busy = None
                    self._in_flight += 1
            self._result.emit(job.key, result, wall, cpu)


class ImageCache:
    """Least-recently-used ``key -> QImage`` store (a dozen full-size figures)."""

    def __init__(self, size: int = 12) -> None:
        self.size = size
        self._items: OrderedDict[tuple, QtGui.QImage] = OrderedDict()

    def get(self, key: tuple) -> QtGui.QImage | None:
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
        return image

    def put(self, key: tuple, image: QtGui.QImage) -> None:
        self._items[key] = image
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()


class FigureView(QtWidgets.QWidget):
    """Shows the rendered figure (or a message); emits :attr:`resized` when resized."""

    resized = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QtGui.QImage | None = None
        self._stale = False
        self._message = ""
        self.setMinimumSize(480, 360)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(960, 640)

    def pixel_size(self) -> tuple[int, int, float]:
        """``(width, height, device pixel ratio)`` to render at."""
        ratio = float(self.devicePixelRatioF())
        return max(self.width(), 1), max(self.height(), 1), ratio

    def set_image(self, image: QtGui.QImage | None, stale: bool = False) -> None:
        """Show ``image``; ``stale`` marks it as the previous candidate's (rendering)."""
        self._image = image
        self._stale = stale
        self._message = ""
        self.update()

    def set_stale(self, stale: bool) -> None:
        if stale != self._stale:
            self._stale = stale
            self.update()

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of a figure."""
        self._message = text
        self._image = None
        self.update()

    @property
    def message(self) -> str:
        return self._message

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), Qt.white)
        if self._image is not None and not self._message:
            target = QtCore.QRectF(0, 0, self.width(), self.height())
            image_size = self._image.size() / max(self._image.devicePixelRatio(), 1.0)
            if image_size == self.size():
                painter.drawImage(QtCore.QPointF(0, 0), self._image)
            else:  # resizing: stretch the last image until the new one arrives
                painter.setRenderHint(QtGui.QPainter.SmoothPixmapTransform)
                painter.drawImage(target, self._image)
            if self._stale:
                painter.fillRect(self.rect(), QtGui.QColor(255, 255, 255, 110))
                painter.setPen(QtGui.QColor(80, 80, 80))
                painter.drawText(self.rect().adjusted(8, 6, -8, -6),
                                 Qt.AlignTop | Qt.AlignRight, "rendering…")
        elif self._message:
            painter.setPen(QtGui.QColor(80, 80, 80))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20),
                             Qt.AlignCenter | Qt.TextWordWrap, self._message)
        painter.end()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self.resized.emit()
