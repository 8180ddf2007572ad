"""The clump verification viewer: one candidate at a time, labelled from the keyboard.

What it shows for the current candidate (METHOD.md section 6, the paper's Appendix A
tool): integrated l-b, l-v and b-v maps of a cut-out around it, with WCS axes in the
cube's frame, its mask outlined (other candidates in the cut-out dotted), the peak
spectrum and the mean spectrum over its footprint (dashed peak / centroid velocities,
its velocity range shaded), and an info panel with the catalogue values.

Labels go through :func:`glue_ssclump.integration.writeback.write_verdicts` (so the
"Labelled: ..." subset groups update in every view), are saved with the glue session
(they are a catalogue component; the viewer state saves too) and are autosaved to a
sidecar CSV after every change.

The current candidate follows glue selections (a table row, a click on the cube in
an image viewer) and is itself shown everywhere as the subset group
``"Current candidate"``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import operator
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from echo import delay_callback
from glue.config import viewer_tool
from glue.core import message as msg
from glue.core.data import BaseData
from glue.core.exceptions import IncompatibleAttribute
from glue.core.subset import ElementSubsetState, InequalitySubsetState, SliceSubsetState
from glue.viewers.common.tool import Tool
from glue_qt.viewers.common.data_viewer import DataViewer
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy import QtCore, QtWidgets
from qtpy.QtCore import Qt

from ..core.labels import (
    LABEL_CLUMP,
    LABEL_COLOURS,
    LABEL_NAMES,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    LABEL_UNCERTAIN,
    LabelsError,
    labels_array,
    read_labels_csv,
    write_labels_csv,
)
from ..integration.pairing import (
    CUBE_COMPONENT,
    KEY,
    catalog_data_for,
    component,
    cube_data_for,
    is_catalog,
    is_cube,
)
from ..integration.run_folder import slug
from ..integration.writeback import LABEL, P_CLUMP, VERDICT, write_verdicts
from .candidates import CandidateIndex, candidate_views
from .figure import OUTLINE, VerificationFigure, cube_geometry
from .options_widget import VerificationOptionsWidget
from .render import DPI, FigureView, ImageCache, RenderJob, RenderWorker
from .state import VerificationViewerState

log = logging.getLogger(__name__)

__all__ = ["CURRENT_SUBSET_LABEL", "KEYMAP", "VerificationViewer", "default_autosave_path"]

#: Subset group that marks the current candidate in every viewer.
CURRENT_SUBSET_LABEL = "Current candidate"
#: Subset groups maintained by glue-ssclump itself: never followed as "selections".
_MANAGED_PREFIXES = ("Labelled:", "SS-3D-Clump:", CURRENT_SUBSET_LABEL)

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


def _rms_text(value: Any) -> str:
    """The catalogue's noise rms for the info panel ('–' when unknown)."""
    try:
        rms = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{rms:.3g} K" if np.isfinite(rms) and rms > 0 else "–"


def default_autosave_path(catalog_data: BaseData, session: Any = None) -> Path:
    """Where the sidecar labels CSV of a catalogue goes unless the user chose a path.

    Next to the file the catalogue was loaded from, if glue knows it (its load log);
    otherwise next to the glue session file, if the session was saved; otherwise
    in ``~/.glue_ssclump/``. The file name is the catalogue's label plus ``.labels.csv``.

    Parameters
    ----------
    catalog_data : glue Data
        The catalogue.
    session : glue Session, optional
        Gives the session file of the application, if any.

    Returns
    -------
    pathlib.Path
    """
    name = f"{slug(catalog_data.label or 'catalogue')}.labels.csv"
    load_log = getattr(catalog_data, "_load_log", None)
    source = getattr(load_log, "path", None)
    if isinstance(source, str) and source:
        return Path(source).expanduser().resolve().parent / name
    app = getattr(session, "application", None)
    session_file = getattr(app, "_last_session_name", None)
    if isinstance(session_file, str) and session_file:
        return Path(session_file).expanduser().resolve().parent / name
    return Path.home() / ".glue_ssclump" / name


class _Catalog:
    """Arrays of the catalogue dataset that navigation needs, cached per change."""

    def __init__(self, data: BaseData) -> None:
        self.data = data
        self.refresh()

    def refresh(self) -> None:
        ids = np.asarray(self.data[KEY]).astype(np.int64)
        if getattr(self, "ids", None) is None or not np.array_equal(ids, self.ids):
            self.ids = ids
            self.row_of = {int(c): i for i, c in enumerate(ids)}

    def cid(self, name: str) -> Any:
        return component(self.data, name)

    def column(self, name: str) -> np.ndarray | None:
        cid = self.cid(name)
        return None if cid is None else np.asarray(self.data[cid])

    def value(self, name: str, row: int) -> Any:
        cid = self.cid(name)
        if cid is None:
            return None
        return np.asarray(self.data.get_data(cid, view=slice(row, row + 1)))[0]

    def unit(self, name: str) -> str:
        cid = self.cid(name)
        return "" if cid is None else (self.data.get_component(cid).units or "")

    def labels(self) -> np.ndarray:
        values = self.column(LABEL)
        if values is None:
            return np.full(self.ids.size, LABEL_NONE, dtype=np.int64)
        return values.astype(np.int64)


class _Cube:
    """The cube dataset's arrays and axes."""

    def __init__(self, data: BaseData) -> None:
        self.data = data
        names = {c.label: c for c in data.main_components}
        self.label_cid = names[KEY]
        intensity = names.get(CUBE_COMPONENT)
        if intensity is None:
            intensity = next(c for c in data.main_components
                             if c.label != KEY and data.get_kind(c) == "numerical")
        self.intensity_cid = intensity
        self.intensity = np.asarray(data[intensity])
        self.labels = np.asarray(data[self.label_cid])
        unit = data.get_component(intensity).units or "K"
        self.geometry = cube_geometry(data.coords, tuple(self.intensity.shape), str(unit))


#: How long closing a viewer waits for an index build to end (ms).  The build cannot
#: be interrupted; one still running after this is kept alive by ``_RUNNING_INDEX``.
_JOIN_TIMEOUT_MS = 60_000

#: Longest wait (ms) for the current candidate's figure before the "Current candidate"
#: subset group is updated anyway (normally it follows the figure at once).
_GROUP_UPDATE_BACKSTOP_MS = 1000

#: Index threads that have not ended.  They have no Qt parent and are referenced here
#: until they end: a ``QThread`` destroyed while its thread runs aborts the process,
#: and the viewer's widgets (its Qt children) can be destroyed before a build is done.
_RUNNING_INDEX: set[_IndexThread] = set()


@atexit.register
def _wait_for_index_threads() -> None:
    # At interpreter exit, Python may destroy a QThread that is still running.
    for thread in list(_RUNNING_INDEX):
        try:
            thread.wait(_JOIN_TIMEOUT_MS)
        except RuntimeError:  # its C++ object is already gone
            pass


def _is_deleted(obj: QtCore.QObject) -> bool:
    """True once the C++ object behind a Qt wrapper has been destroyed."""
    try:
        obj.objectName()
    except RuntimeError:  # "wrapped C/C++ object ... has been deleted"
        return True
    return False


class _IndexThread(QtCore.QThread):
    """Builds the :class:`CandidateIndex` (one ``find_objects`` pass) off the GUI thread.

    Deliberately without a Qt parent (see ``_RUNNING_INDEX``).
    """

    built = QtCore.Signal(int, object)

    def __init__(self, token: int, labels: np.ndarray) -> None:
        super().__init__()
        self._token = token
        self._labels = labels
        self.finished.connect(self._release)

    def start(self, priority: QtCore.QThread.Priority = QtCore.QThread.InheritPriority
              ) -> None:
        _RUNNING_INDEX.add(self)
        super().start(priority)

    def _release(self) -> None:  # GUI thread, once the thread has finished
        self.wait()  # `finished` is emitted just before the thread really ends
        _RUNNING_INDEX.discard(self)

    def run(self) -> None:
        try:
            result: object = CandidateIndex.build(self._labels)
        except Exception as exc:  # reported on the GUI thread
            result = exc
        self.built.emit(self._token, result)


def _stop_background(renderer: RenderWorker, threads: list[_IndexThread]) -> None:
    """Stop the render thread and wait for the index threads (a viewer's, by reference).

    A module function, so that it can also run from the viewer's ``destroyed`` signal,
    when the viewer's own wrapper can no longer be used.
    """
    renderer.stop()
    for thread in threads:
        try:
            thread.wait(_JOIN_TIMEOUT_MS)
        except RuntimeError:  # already destroyed
            pass


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


class VerificationViewer(DataViewer):
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

    def __init__(self, session: Any, state: VerificationViewerState | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(session, state=state, parent=parent)
        self._catalog: _Catalog | None = None
        self._cube: _Cube | None = None
        self._index: CandidateIndex | None = None
        self._index_error: str | None = None
        self._index_token = 0
        self._threads: list[_IndexThread] = []
        self._order = np.empty(0, dtype=np.int64)
        self._pos_of_row = np.empty(0, dtype=np.int64)
        self._order_note = ""
        self._order_before_list = "catalogue"
        self._undo: list[list[tuple[int, int]]] = []
        self._current_group: Any = None
        self._own_group_update = False
        self._refresh_pending = False
        self._group_update_pending = False
        self._stopped = False
        self._autosave_error_shown = False
        self.last_autosave: Path | None = None
        self._autosave_time = ""

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

        # What is on screen is rendered by a worker thread (render.py); this figure
        # mirrors the current candidate for saving and inspection and is drawn only
        # on demand.
        self.figure = Figure(figsize=(9.6, 6.4), dpi=DPI)
        self.canvas = FigureCanvasAgg(self.figure)
        self.vfigure = VerificationFigure(self.figure)
        self.view = FigureView()
        self.view.setFocusPolicy(Qt.ClickFocus)  # a click on the figure gives keys to the viewer
        layout.addWidget(self.view, stretch=1)
        self._renderer = RenderWorker()
        self._renderer.rendered.connect(self._on_rendered)
        self._cache = ImageCache()
        self._generation = 0
        self._displayed_key: tuple | None = None
        self._received = 0
        self._resize_timer = QtCore.QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(120)
        self._resize_timer.timeout.connect(self._request_render)
        self.view.resized.connect(self._resize_timer.start)

        side = QtWidgets.QWidget()
        side.setFixedWidth(265)
        side.setStyleSheet("QLabel { font-size: 11px; } QPushButton { font-size: 11px; }")
        col = QtWidgets.QVBoxLayout(side)
        col.setContentsMargins(4, 4, 4, 4)
        col.setSpacing(4)
        self.title_label = QtWidgets.QLabel()
        self.title_label.setStyleSheet("font-size: 14px; font-weight: bold;")
        self.position_label = QtWidgets.QLabel()
        self.position_label.setWordWrap(True)
        self.info_label = QtWidgets.QLabel()
        self.info_label.setTextFormat(Qt.RichText)
        self.info_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info_label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.info_label.setWordWrap(True)
        self.info_label.setStyleSheet("font-size: 12px;")
        col.addWidget(self.title_label)
        col.addWidget(self.position_label)
        col.addWidget(self.info_label)
        col.addStretch(1)

        self.buttons: dict[int, QtWidgets.QPushButton] = {}
        for code, text, key in ((LABEL_CLUMP, "Clump", "y"), (LABEL_NOT_CLUMP, "Not clump", "n"),
                                (LABEL_UNCERTAIN, "Uncertain", "u")):
            button = QtWidgets.QPushButton(f"{text}   [{key}]")
            button.setFocusPolicy(Qt.NoFocus)
            button.setToolTip(f"Label the current candidate '{LABEL_NAMES[code]}' (key {key})")
            button.setStyleSheet(f"QPushButton {{ color: {LABEL_COLOURS[code]}; "
                                 "font-size: 12px; font-weight: bold; padding: 4px; }")
            button.clicked.connect(lambda _=False, c=code: self.set_label(c))
            col.addWidget(button)
            self.buttons[code] = button

        nav_row = QtWidgets.QHBoxLayout()
        self.prev_button = QtWidgets.QPushButton("◀ Prev [k]")
        self.next_button = QtWidgets.QPushButton("Next [j] ▶")
        self.undo_button = QtWidgets.QPushButton("Undo [z]")
        for button, slot, tip in (
                (self.prev_button, self.previous_candidate, "Previous candidate (k, ←, ↑)"),
                (self.next_button, self.next_candidate, "Next candidate (j, →, ↓)"),
                (self.undo_button, self.undo, "Undo the last label (z, Backspace)")):
            button.setFocusPolicy(Qt.NoFocus)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=slot: s())
            nav_row.addWidget(button)
        col.addLayout(nav_row)

        goto_row = QtWidgets.QHBoxLayout()
        goto_row.addWidget(QtWidgets.QLabel("Go to id"))
        self.goto_box = QtWidgets.QSpinBox()
        self.goto_box.setRange(0, 2_147_483_647)
        self.goto_box.setKeyboardTracking(False)
        self.goto_box.editingFinished.connect(self._goto_from_box)
        goto_row.addWidget(self.goto_box, stretch=1)
        col.addLayout(goto_row)
        self.import_button = QtWidgets.QPushButton("Import labels from CSV…")
        self.import_button.setFocusPolicy(Qt.NoFocus)
        self.import_button.setToolTip("Merge clump_id,label CSV labels into the catalogue")
        self.import_button.clicked.connect(self._import_dialog)
        col.addWidget(self.import_button)

        self.progress_label = QtWidgets.QLabel()
        self.progress_label.setWordWrap(True)
        self.autosave_label = QtWidgets.QLabel()
        self.autosave_label.setWordWrap(True)
        self.autosave_label.setStyleSheet("color: #555555; font-size: 10px;")
        self.status_label = QtWidgets.QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #a0522d;")
        col.addWidget(self.progress_label)
        col.addWidget(self.autosave_label)
        col.addWidget(self.status_label)
        keys = QtWidgets.QLabel("Keys: y / n / u label · j k or arrows move · Home End · "
                                "z undo")
        keys.setStyleSheet("color: #555555; font-size: 10px;")
        keys.setWordWrap(True)
        col.addWidget(keys)
        layout.addWidget(side)

        self.setCentralWidget(central)
        self.central_widget = central
        self.setFocusProxy(central)
        self.resize(1240, 700)

    def keyPressEvent(self, event: Any) -> None:
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

    # -- glue plumbing -----------------------------------------------------------------

    def add_data(self, data: BaseData) -> bool:
        """Use a catalogue or a cube (the other one of the pair is found by the join)."""
        if data not in self._data:
            return False
        self.state.refresh_data_choices(self._data)
        if is_catalog(data):
            self.state.catalog_data = data
            return True
        if is_cube(data):
            catalog = catalog_data_for(data)
            current = self.state.catalog_data
            if catalog is not None and (current is None or cube_data_for(current) is not data):
                self.state.catalog_data = catalog  # its cube (this one) follows
            self.state.cube_data = data
            return True
        QtWidgets.QMessageBox.warning(
            self, "Not a candidate catalogue or cube",
            f"{data.label!r} is neither a candidate catalogue (1-D, with a clump_id column) "
            "nor a cube with a clump_id mask. Detect candidates first (glue-ssclump's "
            "'Detect clump candidates' or its data factory).")
        return False

    def add_subset(self, subset: Any) -> bool:
        """Subsets are not drawn here; a subset's data is added instead."""
        return self.add_data(subset.data)

    def register_to_hub(self, hub: Any) -> None:
        super().register_to_hub(hub)
        # One handler per message class and subscriber (glue's hub keeps the last one):
        # these replace the layer-artist handlers of the base class, unused here.
        hub.subscribe(self, msg.DataCollectionAddMessage, handler=self._on_collection_changed)
        hub.subscribe(self, msg.DataCollectionDeleteMessage,
                      handler=self._on_collection_changed)
        hub.subscribe(self, msg.SubsetCreateMessage, handler=self._on_subset_message)
        hub.subscribe(self, msg.SubsetUpdateMessage, handler=self._on_subset_message)
        hub.subscribe(self, msg.SubsetDeleteMessage, handler=self._on_subset_deleted)
        for cls in (msg.NumericalDataChangedMessage, msg.ComponentsChangedMessage,
                    msg.DataAddComponentMessage, msg.DataUpdateMessage,
                    msg.ExternallyDerivableComponentsChangedMessage):
            hub.subscribe(self, cls, handler=self._on_data_message)

    def _on_collection_changed(self, message: Any) -> None:
        self.state.refresh_data_choices(self._data)

    def _on_data_message(self, message: Any) -> None:
        data = message.sender
        if isinstance(message, msg.DataUpdateMessage):
            if getattr(message, "attribute", None) == "label":
                self.state.refresh_data_choices(self._data)
            return
        if self._cube is not None and data is self._cube.data:
            if self._cube_arrays_changed(message):
                self._reload_cube()
        elif self._catalog is not None and data is self._catalog.data:
            self._schedule_catalog_refresh()
        elif is_catalog(data) or is_cube(data):
            self.state.refresh_data_choices(self._data)

    def _cube_arrays_changed(self, message: Any) -> bool:
        """Did the intensity or clump_id values change (not just, say, a new link)?"""
        cube = self._cube
        assert cube is not None
        names = {c.label: c for c in cube.data.main_components}
        # (ComponentID == builds a subset state, so ids are compared with `is`.)
        if KEY not in names or not any(c is cube.intensity_cid for c in names.values()):
            return True
        if np.asarray(cube.data[names[KEY]]) is not cube.labels \
                or np.asarray(cube.data[cube.intensity_cid]) is not cube.intensity:
            return True
        changed = getattr(message, "components_changed", None)
        if isinstance(message, msg.NumericalDataChangedMessage):
            return changed is None or any(c is cube.label_cid or c is cube.intensity_cid
                                          for c in changed)
        return False

    def _schedule_catalog_refresh(self) -> None:
        # write_verdicts broadcasts several messages per label; refresh once after them.
        if not self._refresh_pending:
            self._refresh_pending = True
            QtCore.QTimer.singleShot(0, self._refresh_catalog)

    def _refresh_catalog(self) -> None:
        self._refresh_pending = False
        if self._catalog is None or self._stopped or _is_deleted(self):
            return
        self._catalog.refresh()
        self._build_order()
        self._update_panel()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._shut_down()
        super().closeEvent(event)

    def _shut_down(self) -> None:
        """Stop the render thread and wait for the index thread; the viewer is done.

        Called when the viewer closes.  Results that the
        threads sent before they ended are dropped when they arrive, so the viewer's
        widgets may be destroyed right after this.  Idempotent.
        """
        self._stopped = True
        self._index_token += 1  # an index built meanwhile is stale
        try:
            self._renderer.rendered.disconnect(self._on_rendered)
        except (TypeError, RuntimeError):  # already disconnected
            pass
        _stop_background(self._renderer, self._threads)
        self._threads.clear()

    # -- datasets ------------------------------------------------------------------------

    def _on_catalog_changed(self, *args: Any) -> None:
        data = self.state.catalog_data
        # Refreshing the combo choices re-notifies the selection: nothing changed then.
        if (self._catalog.data if self._catalog is not None else None) is data:
            return
        self._undo.clear()
        if data is None:
            self._catalog = None
            self._build_order()
            self._update_panel()
            self._redraw_current()
            return
        self._catalog = _Catalog(data)
        cube = cube_data_for(data)
        if cube is not None and cube is not self.state.cube_data and cube in self._data:
            self.state.refresh_data_choices(self._data)
            self.state.cube_data = cube
        if not self.state.autosave_path:
            self.state.autosave_path = str(default_autosave_path(data, self.session))
        note = self._recover_sidecar()
        self._build_order()
        current = self.state.current_id
        if current is None or int(current) not in self._catalog.row_of:
            self._go_to_position(0, +1)
        else:
            self._on_current_changed()
        if note:
            self.status(note)

    def _on_cube_changed(self, *args: Any) -> None:
        if (self._cube.data if self._cube is not None else None) is self.state.cube_data:
            return
        self._reload_cube()

    def _reload_cube(self) -> None:
        """Read the cube's arrays again and re-index its mask (in a thread)."""
        data = self.state.cube_data
        self._index = None
        self._index_error = None
        self._index_token += 1
        self._generation += 1
        self._cache.clear()
        if data is None:
            self._cube = None
            self.vfigure.setup(None)
            self._redraw_current()
            return
        try:
            self._cube = _Cube(data)
        except (KeyError, StopIteration, IncompatibleAttribute) as exc:
            self._cube = None
            self.vfigure.setup(None)
            self.status(f"cannot use {data.label!r} as the cube: {exc}")
            self.view.set_message(f"{data.label!r} cannot be used as the cube: {exc}")
            return
        self.vfigure.setup(self._cube.geometry)
        self._renderer.set_cube(self._generation, self._cube.intensity, self._cube.labels,
                                self._cube.geometry)
        self.view.set_message("Indexing the candidates of the cube…")
        if self._stopped:
            return
        # In place: _stop_background (the destroyed hook) holds this list.
        self._threads[:] = [t for t in self._threads if not t.isFinished()]
        thread = _IndexThread(self._index_token, self._cube.labels)
        thread.built.connect(self._on_index_built)
        self._threads.append(thread)
        thread.start()

    def _on_index_built(self, token: int, result: object) -> None:
        if token != self._index_token or self._stopped or _is_deleted(self):
            # A newer cube (or mask) replaced this one meanwhile, or the viewer was
            # closed (its widgets may be gone).
            return
        if isinstance(result, Exception):
            self._index_error = f"could not index the cube's clump_id mask: {result}"
            self.status(self._index_error)
        else:
            self._index = result  # type: ignore[assignment]
        self._redraw_current()

    @property
    def is_ready(self) -> bool:
        """True once the candidates' bounding boxes are known (the figure can be drawn)."""
        return self._index is not None or self._index_error is not None

    # -- order and navigation ------------------------------------------------------------

    def _on_order_changed(self, *args: Any) -> None:
        self._build_order()
        if self.state.current_id is None:
            self._go_to_position(0, +1)
        else:
            self._update_panel()

    def _build_order(self) -> None:
        cat = self._catalog
        self._order_note = ""
        if cat is None:
            self._order = np.empty(0, dtype=np.int64)
            self._pos_of_row = np.empty(0, dtype=np.int64)
            return
        n = cat.ids.size
        how = self.state.order
        order = np.arange(n)
        if how == "uncertain":
            p = cat.column(P_CLUMP)
            if p is None or not np.isfinite(p.astype(float)).any():
                self._order_note = "no p_clump yet: catalogue order"
            else:
                key = np.abs(p.astype(float) - 0.5)
                order = np.argsort(np.where(np.isfinite(key), key, np.inf), kind="stable")
        elif how == "snr":
            snr = cat.column("snr_peak")
            if snr is None:
                self._order_note = "no snr_peak column: catalogue order"
            else:
                snr = snr.astype(float)
                order = np.argsort(np.where(np.isfinite(snr), snr, np.inf), kind="stable")
        elif how == "random":
            order = np.random.default_rng(int(self.state.seed or 0)).permutation(n)
        elif how == "list":
            order = self._listed_rows(order)
        self._order = order.astype(np.int64)
        # Rows outside the order (a given list) are past its end.
        self._pos_of_row = np.full(n, self._order.size, dtype=np.int64)
        self._pos_of_row[self._order] = np.arange(self._order.size)

    def _listed_rows(self, default: np.ndarray) -> np.ndarray:
        """Rows of the ids of ``state.navigation_ids`` (``default`` if none is usable)."""
        cat = self._catalog
        assert cat is not None
        wanted = list(self.state.navigation_ids or ())
        rows = [cat.row_of[int(i)] for i in wanted if int(i) in cat.row_of]
        if not wanted:
            self._order_note = "no list of ids given: catalogue order"
            return default
        if not rows:
            self._order_note = "none of the listed ids is in the catalogue: catalogue order"
            return default
        # A list edited into the state or a session by hand may repeat ids.
        _, first = np.unique(np.asarray(rows, dtype=np.int64), return_index=True)
        kept = np.asarray(rows, dtype=np.int64)[np.sort(first)]
        if len(wanted) > kept.size:
            self._order_note = (f"given list of ids ({len(wanted) - kept.size} not in the "
                                "catalogue or repeated)")
        return kept

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
        values = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
        if values.size == 0:
            raise ValueError("set_navigation_ids: the list of clump ids is empty (pass None "
                             "to restore the viewer's own order)")
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise ValueError("set_navigation_ids: expected a flat list of integer clump ids, "
                             f"got an array of {values.dtype} with shape {values.shape}")
        unique, counts = np.unique(values, return_counts=True)
        repeated = unique[counts > 1]
        if repeated.size:
            raise ValueError("set_navigation_ids: clump ids listed more than once: "
                             f"{_id_list(repeated)}")
        unknown = np.array([i for i in values.tolist() if i not in cat.row_of], dtype=np.int64)
        if unknown.size:
            raise ValueError(f"set_navigation_ids: {unknown.size} clump id(s) not in the "
                             f"catalogue {cat.data.label!r}: {_id_list(unknown)}")
        if self.state.order != "list":
            self._order_before_list = str(self.state.order)
        with delay_callback(self.state, "order", "navigation_ids"):
            self.state.navigation_ids = [int(i) for i in values.tolist()]
            self.state.order = "list"
        self.state.current_id = int(values[0])

    def _position(self, row: int | None) -> int | None:
        """Position of catalogue ``row`` in the navigation order (None: not in it)."""
        if row is None or row >= self._pos_of_row.size:
            return None
        pos = int(self._pos_of_row[row])
        return pos if pos < self._order.size else None

    def _current_row(self) -> int | None:
        if self._catalog is None or self.state.current_id is None:
            return None
        return self._catalog.row_of.get(int(self.state.current_id))

    def _go_to_position(self, start: int, step: int) -> bool:
        """Go to the first candidate at or after ``start`` (or before, ``step=-1``)
        in the navigation order that passes the unlabelled-only filter."""
        cat = self._catalog
        if cat is None or self._order.size == 0:
            return False
        n = self._order.size
        if step > 0:
            rows = self._order[max(start, 0):]
        else:
            rows = self._order[:min(start, n - 1) + 1][::-1]
        if self.state.unlabelled_only and rows.size:
            ok = cat.labels()[rows] == LABEL_NONE
            if not ok.any():
                self.status("no unlabelled candidate " + ("after" if step > 0 else "before")
                            + " this one")
                return False
            rows = rows[int(np.argmax(ok)):]
        if rows.size == 0:
            self.status("end of the list" if step > 0 else "start of the list")
            return False
        self.state.current_id = int(cat.ids[rows[0]])
        return True

    def next_candidate(self) -> bool:
        """Move to the next candidate in the navigation order; False at the end."""
        pos = self._position(self._current_row())
        return self._go_to_position(0 if pos is None else pos + 1, +1)

    def previous_candidate(self) -> bool:
        """Move to the previous candidate in the navigation order; False at the start."""
        pos = self._position(self._current_row())
        if pos is None:
            return self._go_to_position(0, +1)
        return self._go_to_position(pos - 1, -1)

    def _jump_to_end(self, first: bool) -> None:
        if first:
            self._go_to_position(0, +1)
        else:
            self._go_to_position(self._order.size - 1, -1)

    def _goto_from_box(self) -> None:
        value = int(self.goto_box.value())
        if self._catalog is not None and value in self._catalog.row_of:
            self.state.current_id = value
        else:
            self.status(f"no candidate with clump_id {value}")
        self.central_widget.setFocus()

    def navigation_ids(self) -> np.ndarray:
        """The candidate ids in the current navigation order (unlabelled-only applied)."""
        if self._catalog is None:
            return np.empty(0, dtype=np.int64)
        rows = self._order
        if self.state.unlabelled_only:
            rows = rows[self._catalog.labels()[rows] == LABEL_NONE]
        return self._catalog.ids[rows]

    # -- showing the current candidate ----------------------------------------------------

    def _on_current_changed(self, *args: Any) -> None:
        self.status("")
        row = self._current_row()
        if row is not None:
            self.goto_box.blockSignals(True)
            self.goto_box.setValue(int(self.state.current_id))
            self.goto_box.blockSignals(False)
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
            candidate_views(cube.intensity, cube.labels, job.cid, job.box,  # type: ignore[union-attr]
                            margin_frac=job.margins[0], margin_min=job.margins[1],
                            peak_xyz=job.peak, channel_width=cube.geometry.channel_width),  # type: ignore[union-attr]
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
        for other in self._neighbour_ids():
            if other in self._index.boxes:
                job = self._job_for(other)
                if job.key not in self._cache:
                    jobs.append(job)
        self._renderer.submit(jobs)

    def _on_rendered(self, key: tuple, result: object) -> None:
        self._received += 1
        if self._stopped or key[0] != self._generation or _is_deleted(self):
            return
        current = self._current_key()
        if isinstance(result, Exception):
            log.error("could not draw candidate %s: %s", key[1], result)
            if key == current:
                self.view.set_message(f"Could not draw candidate {key[1]}: {result}")
                self.status(f"could not draw candidate {key[1]}: {result}")
            return
        self._cache.put(key, result)  # type: ignore[arg-type]
        if key == current:
            self.view.set_image(result)  # type: ignore[arg-type]
            self._displayed_key = key
            if self._group_update_pending:  # deferred by _on_current_changed
                QtCore.QTimer.singleShot(0, self._update_current_group)

    @property
    def display_is_current(self) -> bool:
        """True when the figure on screen is the current candidate's (at this size)."""
        key = self._current_key()
        return key is not None and key == self._displayed_key

    @property
    def rendering_idle(self) -> bool:
        """True when nothing is queued for rendering and every image has arrived."""
        return self._renderer.idle and self._received == self._renderer.emitted

    def _neighbour_ids(self, ahead: int = 2, behind: int = 1) -> list[int]:
        """The candidates around the current one in the navigation order (prefetched)."""
        cat, row = self._catalog, self._current_row()
        if cat is None or row is None or self._order.size == 0:
            return []
        pos = self._position(row)
        if pos is None:  # outside a given list: its first ones come next
            window = self._order[:4 * ahead + 5]
        else:
            window = self._order[max(0, pos - 4 * behind - 4):pos + 4 * ahead + 5]
        if self.state.unlabelled_only:
            window = window[cat.labels()[window] == LABEL_NONE]
        ids = cat.ids[window]
        where = np.flatnonzero(ids == cat.ids[row])
        if where.size:
            k = int(where[0])
            after, before = ids[k + 1:k + 1 + ahead], ids[max(0, k - behind):k][::-1]
        else:
            after, before = ids[ids != cat.ids[row]][:ahead], ids[:0]
        return [int(i) for i in (*after, *before)]

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
        self._own_group_update = True
        try:
            group = self._current_group
            if group is None or group not in self._data.subset_groups:
                group = next((g for g in self._data.subset_groups
                              if g.label == CURRENT_SUBSET_LABEL), None)
            if group is None:
                with self._keep_edit_subset():
                    group = self._data.new_subset_group(label=CURRENT_SUBSET_LABEL,
                                                        subset_state=state, color=OUTLINE)
            else:
                group.subset_state = state
            self._current_group = group
        finally:
            self._own_group_update = False

    def _update_panel(self) -> None:
        cat = self._catalog
        row = self._current_row()
        enabled = row is not None
        for button in (*self.buttons.values(), self.prev_button, self.next_button):
            button.setEnabled(enabled)
        self.undo_button.setEnabled(bool(self._undo))
        if cat is None:
            self.title_label.setText("No catalogue")
            self.position_label.setText("")
            self.info_label.setText("Add a candidate catalogue (or its cube) to this viewer.")
            self.progress_label.setText("")
            self._update_autosave_label()
            return
        labels = cat.labels()
        counts = {code: int((labels == code).sum()) for code in LABEL_NAMES}
        n = cat.ids.size
        done = n - counts[LABEL_NONE]
        self.progress_label.setText(
            f"Labelled {done} / {n}: <b style='color:{LABEL_COLOURS[LABEL_CLUMP]}'>"
            f"{counts[LABEL_CLUMP]} clump</b>, <b style='color:{LABEL_COLOURS[LABEL_NOT_CLUMP]}'>"
            f"{counts[LABEL_NOT_CLUMP]} not</b>, <b style='color:"
            f"{LABEL_COLOURS[LABEL_UNCERTAIN]}'>{counts[LABEL_UNCERTAIN]} uncertain</b>")
        self._update_autosave_label()
        if row is None:
            self.title_label.setText("No candidate")
            self.position_label.setText("")
            self.info_label.setText("")
            return
        pos = self._position(row)
        where = (f"{pos + 1} of {self._order.size}" if pos is not None
                 else f"not among the {self._order.size}")
        order_text = {"catalogue": "catalogue order", "uncertain": "most uncertain first",
                      "snr": "lowest SNR first", "random": f"random, seed {self.state.seed}",
                      "list": "given list of ids"}
        how = order_text.get(self.state.order, str(self.state.order))
        if self._order_note:
            how = self._order_note
        extra = ""
        if self.state.unlabelled_only:
            extra = f"; {counts[LABEL_NONE]} unlabelled"
        self.title_label.setText(f"Candidate {int(cat.ids[row])}")
        self.position_label.setText(f"{where} ({how}{extra})")
        self.info_label.setText(self._info_html(row, int(labels[row])))

    def _info_html(self, row: int, label: int) -> str:
        cat = self._catalog
        assert cat is not None
        meta = cat.data.meta
        short = {"RA": "RA", "DEC": "Dec", "GLON": "l", "GLAT": "b"}
        lon_name = short.get(str(meta.get("ssclump_lon_name", "")), "lon")
        lat_name = short.get(str(meta.get("ssclump_lat_name", "")), "lat")

        def num(name: str, fmt: str) -> str:
            value = cat.value(name, row)
            if value is None:
                return "–"
            try:
                fval = float(value)
            except (TypeError, ValueError):
                return str(value)
            return "–" if not np.isfinite(fval) else format(fval, fmt)

        detector = cat.value("detector", row)
        if detector is None:
            detector = meta.get("ssclump_detector", "–")
        flux_int = num("flux_int", ".4g")
        flux_line = (f"{flux_int} K km/s arcsec²" if flux_int != "–"
                     else f"{num('flux', '.4g')} K")
        verdict = cat.value(VERDICT, row)
        verdict = str(verdict) if verdict not in (None, "") else "–"
        p = num(P_CLUMP, ".3f")
        label_text = LABEL_NAMES.get(label, str(label)) or "not labelled"
        rows = [
            ("id", f"{int(cat.ids[row])}"),
            ("detector", str(detector)),
            ("peak", f"{num('peak_value', '.2f')} K"),
            ("integrated flux", flux_line),
            ("voxels", num("npix", ".0f")),
            (f"centroid {lon_name}", f"{num('cen_lon', '.5f')}°"),
            (f"centroid {lat_name}", f"{num('cen_lat', '.5f')}°"),
            ("centroid v", f"{num('cen_vel', '.2f')} km/s"),
            ("peak SNR", num("snr_peak", ".1f")),
            # the samples' background noise uses this rms: the verdicts depend on it
            ("rms (samples)", _rms_text(meta.get("ssclump_rms"))),
            ("p_clump", p),
            ("verdict", verdict),
            ("manual label", f"<b style='color:{LABEL_COLOURS.get(label, '#000')}'>"
                             f"{label_text}</b>"),
        ]
        body = "".join(f"<tr><td style='color:#555555; padding-right:8px'>{k}</td>"
                       f"<td>{v}</td></tr>" for k, v in rows)
        return f"<table cellspacing='2'>{body}</table>"

    def _update_autosave_label(self, *args: Any) -> None:
        path = self.state.autosave_path
        if not path:
            self.autosave_label.setText("Labels autosave: –")
            return
        when = ""
        if self.last_autosave is not None and str(self.last_autosave) == str(path):
            when = f" (saved {self._autosave_time})"
        # Zero-width spaces let the label wrap a long path at its separators.
        wrapped = str(path).replace("/", "/\u200b").replace("\\", "\\\u200b")
        self.autosave_label.setText(f"Labels autosave{when}: {wrapped}")

    # -- labels -----------------------------------------------------------------------------

    def set_label(self, code: int) -> None:
        """Label the current candidate (1 clump, 0 not clump, 2 uncertain).

        Written through ``write_verdicts`` (catalogue ``label`` component and the
        "Labelled" subset groups), autosaved to the sidecar CSV, and undoable.
        """
        cat, row = self._catalog, self._current_row()
        if cat is None or row is None:
            return
        cid = int(cat.ids[row])
        old = int(cat.labels()[row])
        self._write_labels({cid: int(code)})
        self._undo.append([(cid, old)])
        self._autosave()
        self._update_panel()
        if self.state.advance_after_label:
            self.next_candidate()

    def undo(self) -> bool:
        """Undo the last label (or import) and go back to that candidate."""
        if not self._undo:
            self.status("nothing to undo")
            return False
        entries = self._undo.pop()
        self._write_labels(dict(entries))
        self._autosave()
        self._update_panel()
        cid = entries[0][0]
        if self.state.current_id == cid:
            self._update_panel()
        else:
            self.state.current_id = cid
        self.status(f"undone: label of {len(entries)} candidate(s) restored")
        return True

    def labels(self) -> dict[int, int]:
        """The catalogue's manual labels as ``{clump_id: code}`` (unlabelled omitted)."""
        if self._catalog is None:
            return {}
        codes = self._catalog.labels()
        keep = codes != LABEL_NONE
        return {int(c): int(v) for c, v in zip(self._catalog.ids[keep], codes[keep],
                                               strict=True)}

    def _write_labels(self, changes: Mapping[int, int]) -> None:
        cat = self._catalog
        assert cat is not None
        ids = np.fromiter(changes.keys(), dtype=np.int64, count=len(changes))
        codes = np.fromiter(changes.values(), dtype=np.int64, count=len(changes))
        with self._keep_edit_subset():
            write_verdicts(self._data, cat.data, label=codes, clump_id=ids)

    @contextmanager
    def _keep_edit_subset(self) -> Iterator[None]:
        """Keep glue's edit subset while subset groups are created here.

        glue-qt's data collection panel selects every new subset group, which makes it
        the group the next selection (table rows, regions) edits; the user's selections
        must not end up in "Current candidate" or "Labelled: ...".
        """
        mode = self.session.edit_subset_mode
        before = list(mode.edit_subset)
        try:
            yield
        finally:
            if list(mode.edit_subset) != before:
                mode.edit_subset = before

    def _autosave(self) -> Path | None:
        if self._catalog is None or not self.state.autosave_path:
            return None
        path = Path(str(self.state.autosave_path)).expanduser()
        try:
            write_labels_csv(path, self.labels())
        except OSError as exc:
            self.status(f"labels NOT autosaved to {path}: {exc}; choose another path in the "
                        "options panel")
            if not self._autosave_error_shown:
                self._autosave_error_shown = True
                QtWidgets.QMessageBox.warning(self, "Autosave failed",
                                              f"Could not write {path}:\n{exc}")
            return None
        self.last_autosave = path
        self._autosave_time = time.strftime("%H:%M:%S")
        self._update_autosave_label()
        return path

    def import_labels(self, path: str | Path) -> int:
        """Merge labels from a ``clump_id,label`` CSV (undoable as one step).

        Parameters
        ----------
        path : str or Path
            The CSV; its labels replace the catalogue's for the ids it lists.

        Returns
        -------
        int
            The number of labels that changed.

        Raises
        ------
        LabelsError
            Unreadable file, or ids that are not in this catalogue.
        """
        cat = self._catalog
        if cat is None:
            raise LabelsError("no catalogue in the viewer")
        new = read_labels_csv(path)
        labels_array(cat.ids, new, strict=True)  # raises for ids of another catalogue
        changed = self._merge_labels(new)
        self._autosave()
        self.status(f"imported {len(new)} labels from {path} ({changed} changed)")
        return changed

    def _merge_labels(self, new: Mapping[int, int]) -> int:
        cat = self._catalog
        assert cat is not None
        current = cat.labels()
        undo = [(cid, int(current[cat.row_of[cid]])) for cid, code in new.items()
                if int(current[cat.row_of[cid]]) != int(code)]
        if undo:
            self._write_labels({cid: int(new[cid]) for cid, _ in undo})
            self._undo.append(undo)
        self._update_panel()
        return len(undo)

    def _import_dialog(self) -> None:
        start = str(Path(self.state.autosave_path or ".").parent)
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Import labels (clump_id,label CSV)", start, "CSV files (*.csv);;All (*)")
        if not path:
            return
        try:
            self.import_labels(path)
        except (LabelsError, OSError) as exc:
            QtWidgets.QMessageBox.warning(self, "Labels not imported", str(exc))

    def _recover_sidecar(self) -> str:
        """Pick up the autosaved labels of an earlier run (e.g. after a crash).

        Restored only into a catalogue that has no labels yet (undoable); a sidecar that
        differs from labels the catalogue already has is kept under a new name rather
        than overwritten by the next autosave.

        Returns
        -------
        str
            What was done, for the status line ('' if nothing).
        """
        cat = self._catalog
        path = Path(str(self.state.autosave_path)).expanduser() if self.state.autosave_path \
            else None
        if cat is None or path is None or not path.is_file():
            return ""
        try:
            saved = read_labels_csv(path)
            labels_array(cat.ids, saved, strict=True)
        except (LabelsError, OSError) as exc:
            return self._keep_old_sidecar(path, f"it does not fit this catalogue ({exc})")
        current = self.labels()
        if saved == current:
            return ""
        if not current:
            changed = self._merge_labels(saved)
            return f"restored {changed} autosaved labels from {path} (z undoes)"
        return self._keep_old_sidecar(path, "it differs from the catalogue's labels")

    def _keep_old_sidecar(self, path: Path, why: str) -> str:
        backup = path.with_name(f"{path.stem}.{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
        if backup.exists():
            backup = backup.with_name(f"{backup.stem}-{time.monotonic_ns()}{path.suffix}")
        try:
            path.rename(backup)
        except OSError as exc:
            # Cannot move it aside: write elsewhere rather than over it.
            self.state.autosave_path = str(backup)
            return (f"{path} exists and {why}, and could not be renamed ({exc}); "
                    f"labels now autosave to {backup}")
        return (f"earlier labels file kept as {backup.name}: {why}; "
                "'Import labels…' merges it")

    # -- following glue selections ------------------------------------------------------

    def _on_subset_message(self, message: Any) -> None:
        if isinstance(message, msg.SubsetUpdateMessage) and message.attribute != "subset_state":
            return
        cat = self._catalog
        subset = message.subset
        # A subset group has one subset per dataset: react to the catalogue's only.
        if cat is None or subset.data is not cat.data:
            return
        group = getattr(subset, "group", None)
        label = str(getattr(group, "label", "") or "")
        if self._own_group_update or label.startswith(_MANAGED_PREFIXES):
            return
        state = subset.subset_state
        try:
            ids, from_cube = self._ids_selected_by(state)
        except IncompatibleAttribute:
            return
        if ids.size:
            self._follow(ids, from_cube)

    def _on_subset_deleted(self, message: Any) -> None:
        group = getattr(message.subset, "group", None)
        if group is not None and group is self._current_group:
            self._current_group = None

    def _ids_selected_by(self, state: Any) -> tuple[np.ndarray, bool]:
        """Candidate ids a subset state selects, and whether it was drawn on the cube."""
        cat, cube = self._catalog, self._cube
        assert cat is not None
        if cube is not None and isinstance(state, SliceSubsetState) \
                and state.reference_data is cube.data:
            # glue's pixel-selection tool: read only the selected line of sight.
            ids = np.unique(cube.labels[tuple(state.slices)])
            return ids[ids > 0].astype(np.int64), True
        if isinstance(state, ElementSubsetState) and state.data == cat.data.uuid:
            rows = np.asarray(state.indices, dtype=np.int64).ravel()
            rows = rows[(rows >= 0) & (rows < cat.ids.size)]
            return cat.ids[rows], False
        parents = {getattr(a, "parent", None) for a in getattr(state, "attributes", ())}
        if cube is not None and parents and parents <= {cube.data}:
            mask = np.asarray(cube.data.get_mask(state), dtype=bool)
            ids = np.unique(cube.labels[mask])
            return ids[ids > 0].astype(np.int64), True
        mask = np.asarray(cat.data.get_mask(state), dtype=bool)
        return cat.ids[mask], False

    def _follow(self, ids: np.ndarray, from_cube: bool) -> None:
        """Make one of the selected candidates current (unless the current one is selected).

        A catalogue selection gives the first selected row in the navigation order; a
        selection on the cube (which can cross several candidates along the line of
        sight) gives the brightest one.
        """
        cat = self._catalog
        assert cat is not None
        current = self.state.current_id
        if current is not None and int(current) in set(ids.tolist()):
            return
        rows = np.array([cat.row_of[i] for i in ids.tolist() if i in cat.row_of], dtype=np.int64)
        if rows.size == 0:
            return
        peak = cat.column("peak_value") if from_cube else None
        if peak is not None:
            row = int(rows[np.argmax(np.nan_to_num(peak[rows].astype(float), nan=-np.inf))])
        else:
            row = int(rows[np.argmin(self._pos_of_row[rows])])
        self.state.current_id = int(cat.ids[row])


def _id_list(ids: np.ndarray, most: int = 10) -> str:
    """``1, 2, 3`` (the first ``most`` ids, then how many more)."""
    shown = ", ".join(str(int(i)) for i in ids[:most])
    return shown + (f" and {ids.size - most} more" if ids.size > most else "")


def _as_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None
