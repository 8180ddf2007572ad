"""What the verification viewer shows: the figure (rendered off-thread), the side
panel, and the "Current candidate" subset group."""

from __future__ import annotations

import logging
import operator
from pathlib import Path
from typing import Any

import numpy as np
from glue.core.subset import InequalitySubsetState
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy import QtCore
from qtpy.QtCore import Qt

from ...core.labels import LABEL_NONE
from ...integration.pairing import KEY
from ...integration.selection import keep_edit_subset
from ..candidates import candidate_views
from ..figure import OUTLINE, VerificationFigure
from ..render import DPI, FigureView, ImageCache, RenderJob, RenderWorker
from .cube import is_deleted
from .info_panel import autosave_text, info_html, order_text, progress_html, same_path
from .side_panel import SidePanel

log = logging.getLogger(__name__)

__all__ = ["PresenterMixin"]

#: Longest wait (ms) for the current candidate's figure before the "Current candidate"
#: subset group is updated anyway (normally it follows the figure at once).
_GROUP_UPDATE_BACKSTOP_MS = 1000


def _as_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


class PresenterMixin:
    """Render requests and prefetching, the side panel and the current-candidate group.

    Part of :class:`~glue_ssclump.qt.viewer.VerificationViewer`.
    """

    def _init_presenter(self) -> None:
        # What is on screen is rendered by a worker thread (render.py); this figure
        # mirrors the current candidate for saving and inspection and is drawn only
        # on demand.
        self.figure = Figure(figsize=(9.6, 6.4), dpi=DPI)
        self.canvas = FigureCanvasAgg(self.figure)
        self.vfigure = VerificationFigure(self.figure)
        self.view = FigureView()
        self.view.setFocusPolicy(Qt.ClickFocus)  # a click on the figure gives keys to the viewer
        self._renderer = RenderWorker()
        self._renderer.rendered.connect(self._on_rendered)
        self._cache = ImageCache()
        self._generation = 0
        self._displayed_key: tuple | None = None
        self._current_group: Any = None
        self._own_group_update = False
        self._group_update_pending = False
        self._resize_timer = QtCore.QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(120)
        self._resize_timer.timeout.connect(self._request_render)
        self.view.resized.connect(self._resize_timer.start)

    def _build_panel(self) -> SidePanel:
        panel = SidePanel()
        ui = panel.ui
        self.title_label, self.position_label = ui.title_label, ui.position_label
        self.info_label, self.progress_label = ui.info_label, ui.progress_label
        self.autosave_label, self.status_label = ui.autosave_label, ui.status_label
        self.buttons = panel.buttons
        self.prev_button, self.next_button = ui.prev_button, ui.next_button
        self.undo_button, self.import_button = ui.undo_button, ui.import_button
        self.goto_box = ui.goto_box
        panel.label_requested.connect(self.set_label)
        panel.previous_requested.connect(self.previous_candidate)
        panel.next_requested.connect(self.next_candidate)
        panel.undo_requested.connect(self.undo)
        panel.goto_requested.connect(self._goto)
        panel.import_requested.connect(self._import_dialog)
        return panel

    def _new_generation(self) -> None:
        """A new cube (or mask): earlier images are stale."""
        self._generation += 1
        self._cache.clear()

    # -- showing the current candidate ----------------------------------------------------

    def _on_current_changed(self, *args: Any) -> None:
        self.status("")
        if self._current_row() is not None:
            self.panel.show_goto(int(self.state.current_id))
        self._update_panel()
        self._redraw_current()
        # Other viewers follow after this one has redrawn (and only once when keys
        # are held down): glue-qt does a fair amount of work per subset update.
        if not self._group_update_pending:
            self._group_update_pending = True
            if self.display_is_current or self._current_group is None:
                QtCore.QTimer.singleShot(0, self._update_current_group)
            else:
                # An existing group follows once the figure is on screen (_on_rendered):
                # done now, glue's update would hold the GIL while the render thread
                # draws. The timer is a backstop for a render that never comes.
                QtCore.QTimer.singleShot(_GROUP_UPDATE_BACKSTOP_MS, self._update_current_group)

    def _redraw_current(self, *args: Any) -> None:
        cid = self.state.current_id
        cube, cat = self._cube, self._catalog
        message = ""
        if cube is None:
            message = "Choose a cube with a clump_id mask in the options panel"
        elif cat is None:
            message = "Choose a candidate catalogue in the options panel"
        elif self._index is None:
            message = self._index_error or "Indexing the candidates of the cube…"
        elif cid is None:
            message = "No candidate to show"
        elif int(cid) not in self._index.boxes:
            message = (f"Candidate {cid} has no voxels in {cube.data.label!r}'s clump_id "
                       "mask (catalogue and cube do not match?)")
        if message:
            self.vfigure.message(message)
            self.view.set_message(message)
            self._displayed_key = None
            return
        job = self._job_for(int(cid))
        self.vfigure.show(
            candidate_views(cube.intensity, cube.mask, job.cid, job.box,
                            margin_frac=job.margins[0], margin_min=job.margins[1],
                            peak_xyz=job.peak, channel_width=cube.geometry.channel_width),
            job.v_peak, job.v_cen)
        self._request_render()

    def _job_for(self, cid: int) -> RenderJob:
        """What the render worker needs to draw candidate ``cid`` at the view's size."""
        cube, cat = self._cube, self._catalog
        assert cube is not None and self._index is not None
        peak = v_peak = v_cen = None
        row = cat.row_of.get(cid) if cat is not None else None
        if row is not None and cat is not None:
            values = [cat.value(name, row) for name in ("peak_x", "peak_y", "peak_z")]
            if all(_as_float(v) is not None for v in values):
                peak = tuple(int(round(float(v))) for v in values)
            if cube.geometry.velocity_unit == "km/s":
                v_peak = _as_float(cat.value("peak_vel", row))
                v_cen = _as_float(cat.value("cen_vel", row))
        key = (self._generation, cid, float(self.state.margin_frac),
               int(self.state.margin_min), *self.view.pixel_size())
        return RenderJob(key=key, cid=cid, box=self._index.boxes[cid], peak=peak,
                         v_peak=v_peak, v_cen=v_cen)

    def _current_key(self) -> tuple | None:
        cid = self.state.current_id
        if self._index is None or self._cube is None or cid is None \
                or int(cid) not in self._index.boxes:
            return None
        return self._job_for(int(cid)).key

    def _request_render(self) -> None:
        """Show the current candidate's image if rendered; queue it and its neighbours."""
        cid = self.state.current_id
        if self._index is None or self._cube is None or cid is None \
                or int(cid) not in self._index.boxes:
            return
        current = self._job_for(int(cid))
        image = self._cache.get(current.key)
        if image is not None:
            self.view.set_image(image)
            self._displayed_key = current.key
        else:
            self.view.set_stale(True)
        jobs = [current] if image is None else []
        neighbours = self._nav.neighbours(self._current_row(),
                                          bool(self.state.unlabelled_only))
        for other in neighbours:
            if other in self._index.boxes:
                job = self._job_for(other)
                if job.key not in self._cache:
                    jobs.append(job)
        self._renderer.submit(jobs)

    def _on_rendered(self, key: tuple, result: object, wall: float = 0.0,
                     cpu: float = 0.0) -> None:
        if self._stopped or key[0] != self._generation or is_deleted(self):
            return
        current = self._current_key()
        if isinstance(result, Exception):
            log.error("could not draw candidate %s: %s", key[1], result)
            if key == current:
                self.view.set_message(f"Could not draw candidate {key[1]}: {result}")
                self.status(f"could not draw candidate {key[1]}: {result}")
            return
        self._cache.put(key, result)
        if key == current:
            self.view.set_image(result)
            self._displayed_key = key
            if self._group_update_pending:  # deferred by _on_current_changed
                QtCore.QTimer.singleShot(0, self._update_current_group)

    @property
    def display_is_current(self) -> bool:
        """True when the figure on screen is the current candidate's (at this size)."""
        key = self._current_key()
        return key is not None and key == self._displayed_key

    def save_figure(self, path: str | Path, dpi: float = 150) -> None:
        """Save the current candidate's figure (at the viewer's aspect ratio)."""
        width, height, _ = self.view.pixel_size()
        self.figure.set_size_inches(width / DPI, height / DPI)
        self.figure.savefig(path, dpi=dpi)

    def _update_current_group(self) -> None:
        if not self._group_update_pending:  # already done (after the render or the backstop)
            return
        self._group_update_pending = False
        cat, cid = self._catalog, self.state.current_id
        if cat is None or cid is None or self._stopped or cat.data not in self._data:
            return
        state = InequalitySubsetState(cat.cid(KEY), int(cid), operator.eq)
        label = self.current_subset_label
        self._own_group_update = True
        try:
            group = self._current_group
            if group is None or group not in self._data.subset_groups:
                group = next((g for g in self._data.subset_groups if g.label == label), None)
            if group is None:
                with keep_edit_subset(self._data, self.session.edit_subset_mode):
                    group = self._data.new_subset_group(label=label, subset_state=state,
                                                        color=OUTLINE)
            else:
                group.subset_state = state
            self._current_group = group
        finally:
            self._own_group_update = False

    # -- the side panel -------------------------------------------------------------------

    def _update_panel(self) -> None:
        cat = self._catalog
        row = self._current_row()
        self.panel.set_navigation_enabled(row is not None,
                                          self._book is not None and self._book.can_undo)
        if cat is None:
            self.title_label.setText("No catalogue")
            self.position_label.setText("")
            self.info_label.setText("Add a candidate catalogue (or its cube) to this viewer.")
            self.progress_label.setText("")
            self._update_autosave_label()
            return
        labels = cat.labels()
        self.progress_label.setText(progress_html(labels))
        self._update_autosave_label()
        if row is None:
            self.title_label.setText("No candidate")
            self.position_label.setText("")
            self.info_label.setText("")
            return
        nav = self._nav
        pos = nav.position(row)
        where = (f"{pos + 1} of {nav.order.size}" if pos is not None
                 else f"not among the {nav.order.size}")
        how = nav.note or order_text(str(self.state.order), self.state.seed)
        extra = ""
        if self.state.unlabelled_only:
            extra = f"; {int((labels == LABEL_NONE).sum())} unlabelled"
        self.title_label.setText(f"Candidate {int(cat.ids[row])}")
        self.position_label.setText(f"{where} ({how}{extra})")
        self.info_label.setText(info_html(cat, row, int(labels[row])))

    def _update_autosave_label(self, *args: Any) -> None:
        path = self.state.autosave_path
        when = self._autosave_time if same_path(self.last_autosave, path) else ""
        self.autosave_label.setText(autosave_text(path, when))
