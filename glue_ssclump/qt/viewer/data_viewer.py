"""The clump verification viewer: one candidate at a time, labelled from the keyboard.

What it shows for the current candidate (METHOD.md section 6, the paper's Appendix A
tool): integrated l-b, l-v and b-v maps of a cut-out around it, with WCS axes in the
cube's frame, its mask outlined (other candidates in the cut-out dotted), the peak
spectrum and the mean spectrum over its footprint (dashed peak / centroid velocities,
its velocity range shaded), and an info panel with the catalogue values.

Labels go through :class:`~glue_ssclump.integration.labelling.LabelBook` (so the
"Labelled: ..." subset groups update in every view), are saved with the glue session
(they are a catalogue component; the viewer state saves too) and are autosaved to a
sidecar CSV after every change.  The navigation order is
:class:`~glue_ssclump.integration.navigation.Navigation`'s.

The current candidate follows glue selections (a table row, a click on the cube in
an image viewer) and is itself shown everywhere as the subset group
``"Current candidate"``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from echo import delay_callback
from glue.config import viewer_tool
from glue.viewers.common.tool import Tool
from glue_qt.viewers.common.data_viewer import DataViewer
from qtpy import QtWidgets
from qtpy.QtCore import Qt

from ...core.labels import LABEL_CLUMP, LABEL_NOT_CLUMP, LABEL_UNCERTAIN
from ...integration.labelling import default_autosave_path
from ...integration.navigation import check_navigation_ids
from ..options_widget import VerificationOptionsWidget
from ..state import VerificationViewerState
from .hub import HubMixin
from .labelling import LabelsMixin
from .presenter import PresenterMixin

log = logging.getLogger(__name__)

__all__ = ["CURRENT_SUBSET_LABEL", "KEYMAP", "SaveFigureTool", "VerificationViewer",
           "default_autosave_path"]

#: Subset group that marks the current candidate in every viewer.
CURRENT_SUBSET_LABEL = "Current candidate"

#: Keyboard map (key -> action), also shown in the viewer's tooltips.
KEYMAP = {
    "y": "label: clump", "n": "label: not a clump", "u": "label: uncertain",
    "j / Right / Down": "next candidate", "k / Left / Up": "previous candidate",
    "Home / End": "first / last candidate", "z / Backspace": "undo the last label",
}

_LABEL_KEYS = {Qt.Key_Y: LABEL_CLUMP, Qt.Key_N: LABEL_NOT_CLUMP, Qt.Key_U: LABEL_UNCERTAIN}
_NEXT_KEYS = (Qt.Key_J, Qt.Key_Right, Qt.Key_Down)
_PREV_KEYS = (Qt.Key_K, Qt.Key_Left, Qt.Key_Up)
_UNDO_KEYS = (Qt.Key_Z, Qt.Key_Backspace)


@viewer_tool
class SaveFigureTool(Tool):
    """Save the verification figure (maps and spectra) as an image."""

    icon = "glue_filesave"
    tool_id = "ssclump:savefig"
    action_text = "Save the figure as PNG/PDF/SVG"
    tool_tip = "Save the verification figure"

    def activate(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self.viewer, "Save figure", f"candidate_{self.viewer.state.current_id}.png",
            "Images (*.png *.pdf *.svg)")
        if path:
            self.viewer.save_figure(path)


class VerificationViewer(HubMixin, PresenterMixin, LabelsMixin, DataViewer):
    """Manual verification of clump candidates (glue-qt viewer).

    Add a candidate catalogue or its cube (drag it onto the viewer, or choose it in
    the options panel); the other one of the pair is found through their ``clump_id``
    join. Keys: ``y`` / ``n`` / ``u`` label, ``j`` / ``k`` or the arrows move, ``z`` or
    Backspace undoes the last label (see :data:`KEYMAP`).
    """

    LABEL = "Clump verification (SS-3D-Clump)"
    _state_cls = VerificationViewerState
    _options_cls = VerificationOptionsWidget
    _close_on_last_layer_removed = False
    tools: list[str] = []
    subtools = {"save": ["ssclump:savefig"]}
    current_subset_label = CURRENT_SUBSET_LABEL

    def __init__(self, session: Any, state: VerificationViewerState | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(session, state=state, parent=parent)
        self._init_hub()
        self._init_labels()
        self._order_before_list = "catalogue"
        self._stopped = False

        self._build_ui()
        # Widgets destroyed without a close (the application torn down, a parent
        # deleted): the background threads still stop.  Not a bound method of the
        # viewer, whose wrapper is unusable by then.
        self.destroyed.connect(functools.partial(_stop_background, self._renderer,
                                                 self._threads))
        self.state.refresh_data_choices(self._data)
        self.state.add_callback("catalog_data", self._on_catalog_changed)
        self.state.add_callback("cube_data", self._on_cube_changed)
        for name in ("order", "navigation_ids", "unlabelled_only", "seed"):
            self.state.add_callback(name, self._on_order_changed)
        self.state.add_callback("current_id", self._on_current_changed)
        self.state.add_callback("margin_frac", self._redraw_current)
        self.state.add_callback("margin_min", self._redraw_current)
        self.state.add_callback("autosave_path", self._update_autosave_label)
        self._on_cube_changed()
        self._on_catalog_changed()
        self._update_panel()

    # -- UI ----------------------------------------------------------------------------

    def _build_ui(self) -> None:
        central = QtWidgets.QWidget()
        central.setFocusPolicy(Qt.StrongFocus)
        layout = QtWidgets.QHBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        self._init_presenter()
        layout.addWidget(self.view, stretch=1)
        self.panel = self._build_panel()
        layout.addWidget(self.panel)
        self.setCentralWidget(central)
        self.central_widget = central
        self.setFocusProxy(central)
        self.resize(1240, 700)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        """y / n / u label; j k and arrows move; Home / End; z / Backspace undo."""
        key = event.key()
        if event.modifiers() & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier):
            super().keyPressEvent(event)
            return
        if key in _LABEL_KEYS:
            self.set_label(_LABEL_KEYS[key])
        elif key in _NEXT_KEYS:
            self.next_candidate()
        elif key in _PREV_KEYS:
            self.previous_candidate()
        elif key == Qt.Key_Home:
            self._jump_to_end(first=True)
        elif key == Qt.Key_End:
            self._jump_to_end(first=False)
        elif key in _UNDO_KEYS:
            self.undo()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def status(self, text: str) -> None:
        """Show a one-line message under the buttons (and log it)."""
        self.status_label.setText(text)
        if text:
            log.info("%s", text)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._shut_down()
        super().closeEvent(event)

    def _shut_down(self) -> None:
        """Stop the render thread and wait for the index thread; the viewer is done.

        Called when the viewer closes.  Results that the threads sent before they
        ended are dropped when they arrive, so the viewer's widgets may be destroyed
        right after this.  Idempotent.
        """
        self._stopped = True
        self._index_token += 1  # an index built meanwhile is stale
        try:
            self._renderer.rendered.disconnect(self._on_rendered)
        except (TypeError, RuntimeError):  # already disconnected
            pass
        _stop_background(self._renderer, self._threads)
        self._threads.clear()

    # -- order and navigation ------------------------------------------------------------

    def _on_order_changed(self, *args: Any) -> None:
        self._build_order()
        if self.state.current_id is None:
            self._go_to_position(0, +1)
        else:
            self._update_panel()

    def _build_order(self) -> None:
        self._nav.build(self._catalog, str(self.state.order), int(self.state.seed or 0),
                        self.state.navigation_ids)

    def set_navigation_ids(self, ids: Iterable[int] | np.ndarray | None) -> None:
        """Navigate through these candidates only, in this order; show the first one.

        Next / previous (j / k, the arrows, the buttons), Home / End, the move after a
        label and the prefetching of figures then follow ``ids``; the "unlabelled only"
        option still skips labelled candidates of the list.  The options panel shows the
        order "Given list of ids"; choosing another order there leaves the list, and
        choosing "Given list of ids" again returns to it.  Other ways of changing the
        current candidate (go to id, a selection in another viewer) still reach any
        candidate; "next" from one outside the list goes to the list's first.

        Parameters
        ----------
        ids : iterable of int, or None
            ``clump_id`` values of candidates of the viewer's catalogue, each at most
            once, in the order to visit them.  The first one becomes the current
            candidate (even if it is labelled).  ``None`` forgets the list and restores
            the navigation order that was used before it.

        Raises
        ------
        ValueError
            If the viewer has no catalogue, or ``ids`` is empty, not integers, has
            repeated ids or ids that are not in the catalogue (nothing changes then).

        Notes
        -----
        The list is viewer state (``state.navigation_ids``, with ``state.order`` set to
        ``"list"``), so it is saved with the glue session and restored from it.
        """
        if ids is None:
            restore = self._order_before_list if self.state.order == "list" \
                else self.state.order
            with delay_callback(self.state, "order", "navigation_ids"):
                self.state.navigation_ids = None
                self.state.order = restore
            return
        cat = self._catalog
        if cat is None:
            raise ValueError("set_navigation_ids: the viewer has no candidate catalogue")
        values = check_navigation_ids(ids, cat)
        if self.state.order != "list":
            self._order_before_list = str(self.state.order)
        with delay_callback(self.state, "order", "navigation_ids"):
            self.state.navigation_ids = values
            self.state.order = "list"
        self.state.current_id = values[0]

    def _current_row(self) -> int | None:
        if self._catalog is None or self.state.current_id is None:
            return None
        return self._catalog.row_of.get(int(self.state.current_id))

    def _go_to_position(self, start: int, step: int) -> bool:
        """Go to the first candidate at or after ``start`` (or before, ``step=-1``)
        in the navigation order that passes the unlabelled-only filter."""
        row, why = self._nav.find(start, step, bool(self.state.unlabelled_only))
        if row is None:
            if why:
                self.status(why)
            return False
        self.state.current_id = int(self._catalog.ids[row])  # type: ignore[union-attr]
        return True

    def next_candidate(self) -> bool:
        """Move to the next candidate in the navigation order; False at the end."""
        pos = self._nav.position(self._current_row())
        return self._go_to_position(0 if pos is None else pos + 1, +1)

    def previous_candidate(self) -> bool:
        """Move to the previous candidate in the navigation order; False at the start."""
        pos = self._nav.position(self._current_row())
        if pos is None:
            return self._go_to_position(0, +1)
        return self._go_to_position(pos - 1, -1)

    def _jump_to_end(self, first: bool) -> None:
        if first:
            self._go_to_position(0, +1)
        else:
            self._go_to_position(self._nav.order.size - 1, -1)

    def _goto(self, value: int) -> None:
        if self._catalog is not None and value in self._catalog.row_of:
            self.state.current_id = value
        else:
            self.status(f"no candidate with clump_id {value}")
        self.central_widget.setFocus()

    def navigation_ids(self) -> np.ndarray:
        """The candidate ids in the current navigation order (unlabelled-only applied)."""
        return self._nav.ids(bool(self.state.unlabelled_only))


def _stop_background(renderer: Any, index_threads: list[Any]) -> None:
    """Stop the render thread and wait for the index threads (a viewer's, by reference).

    A module function, so that it can also run from the viewer's ``destroyed`` signal,
    when the viewer's own wrapper can no longer be used.  An index build cannot be
    interrupted; one still running after the wait is kept alive by
    :mod:`glue_ssclump.qt.threads` until it ends.
    """
    renderer.stop()
    for thread in index_threads:
        try:
            thread.wait(_JOIN_TIMEOUT_MS)
        except RuntimeError:  # already destroyed
            pass


#: How long closing a viewer waits for an index build to end (ms).
_JOIN_TIMEOUT_MS = 60_000

