"""The "SS-3D-Clump: detect clump candidates…" dialog.

Choose a 3-D cube of the session and a detector (the built-in ClumpFind, FellWalker
and dendrogram leaves, or a plugin's); its parameters are listed from the detector's
:class:`~glue_ssclump.core.detectors.base.Param` descriptions.  Levels are entered in
K or in units of the noise rms; the rms is estimated from the cube on a worker thread
(editable), and every level shows its value in the other unit too.

Detection (:func:`~glue_ssclump.core.jobs.detect_candidates_in_child`) runs in a child
process, driven by a :class:`~.worker.Worker` with a progress bar and a cancel button,
so that nothing it does can stall the interface; its result is put
into the session (:func:`~glue_ssclump.integration.factory.attach_candidates`) on the
GUI thread: a ``clump_id`` mask on the cube and a catalogue dataset joined and linked
to it (updated in place when the cube already had one).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from echo import CallbackProperty, SelectionCallbackProperty, delay_callback
from echo.qt import autoconnect_callbacks_to_qt
from glue.core import message as msg
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.hub import HubListener
from glue.core.state_objects import State
from qtpy import QtWidgets

from ..core.cube import PPVCube, estimate_rms
from ..core.detectors import available_detectors
from ..core.detectors.base import Detector, Param, parse_level
from ..core.jobs import detect_candidates_in_child
from ..integration.factory import attach_candidates, ppv_cube_from_data
from ..integration.pairing import KEY, META_RMS
from .state import data_label
from .worker import (
    Worker,
    WorkerDialogMixin,
    describe_exception,
    guarded,
    show_message,
)

log = logging.getLogger(__name__)

__all__ = ["DetectDialog", "DetectState", "ParamEditor", "is_cube_data"]

_UNITS = ("× rms", "K")
_LEVEL_DECIMALS = (3, 5)  # multiples of the rms; K
_ERROR = "#c0392b"


def is_cube_data(data: Any) -> bool:
    """A 3-D dataset with at least one numeric component (a candidate cube)."""
    if not isinstance(data, Data) or data.ndim != 3:
        return False
    return any(c.label != KEY and data.get_kind(c) == "numerical"
               for c in data.main_components)


class DetectState(State):
    """Settings of the detect dialog (autoconnected to ``detect_dialog.ui``)."""

    cube_data = SelectionCallbackProperty(docstring="The PPV cube")
    method = SelectionCallbackProperty(docstring="Detector name")
    rms = CallbackProperty(0.0, docstring="Noise rms (K) used for levels given in rms")

    def __init__(self) -> None:
        super().__init__()
        DetectState.cube_data.set_display_func(self, data_label)
        detectors = available_detectors()
        DetectState.method.set_choices(self, sorted(detectors))
        DetectState.method.set_display_func(
            self, lambda name: f"{name}: {detectors[name].description}"
            if name in detectors else str(name))
        if "clumpfind" in detectors:
            self.method = "clumpfind"


class ParamEditor:
    """The widgets of one detector parameter in a form row.

    ``level`` parameters get a value box and a unit choice (× rms or K) with the value
    in the other unit next to it; ``int`` a spin box, ``float`` a decimal box, ``bool``
    a check box.

    Parameters
    ----------
    param : Param
    rms : callable
        Returns the current rms in K (0 when unknown).
    """

    def __init__(self, param: Param, rms: Any) -> None:
        self.param = param
        self._rms = rms
        self.widget = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.value: Any
        self.unit: QtWidgets.QComboBox | None = None
        self.other: QtWidgets.QLabel | None = None
        if param.kind == "level":
            self.value = QtWidgets.QDoubleSpinBox()
            self.value.setRange(-1e6, 1e6)
            self.value.setSingleStep(0.5)
            self.unit = QtWidgets.QComboBox()
            self.unit.addItems(_UNITS)
            self.other = QtWidgets.QLabel()
            self.other.setMinimumWidth(90)
            self.other.setStyleSheet("color: #555555;")
            row.addWidget(self.value, stretch=1)
            row.addWidget(self.unit)
            row.addWidget(self.other)
            self.value.valueChanged.connect(self.update_other)
            self.unit.currentIndexChanged.connect(self._on_unit_changed)
            self._unit_index = 0
        elif param.kind == "int":
            self.value = QtWidgets.QSpinBox()
            self.value.setRange(-1_000_000_000, 1_000_000_000)
            row.addWidget(self.value, stretch=1)
        elif param.kind == "float":
            self.value = QtWidgets.QDoubleSpinBox()
            self.value.setDecimals(4)
            self.value.setRange(-1e9, 1e9)
            row.addWidget(self.value, stretch=1)
        else:
            self.value = QtWidgets.QCheckBox()
            row.addWidget(self.value, stretch=1)
        self.widget.setToolTip(param.doc)
        self.reset()

    def reset(self) -> None:
        """Show the parameter's default."""
        default = self.param.default
        if self.param.kind == "level":
            assert self.unit is not None
            self._show_level(default)
        elif self.param.kind == "bool":
            self.value.setChecked(bool(default))
        elif self.param.kind == "int":
            self.value.setValue(int(default))
        else:
            self.value.setValue(float(default))

    def _set_level(self, value: float, unit_index: int) -> None:
        assert self.unit is not None
        self.unit.blockSignals(True)
        self.unit.setCurrentIndex(unit_index)
        self.unit.blockSignals(False)
        self._unit_index = unit_index
        self.value.setDecimals(_LEVEL_DECIMALS[unit_index])
        self.value.setValue(value)
        self.update_other()

    def _on_unit_changed(self, index: int) -> None:
        # Keep the same level in K when the unit changes (when the rms is known).
        rms = float(self._rms() or 0.0)
        value = float(self.value.value())
        if rms > 0 and index != self._unit_index:
            # Rounded to the box's decimals, so that a round trip gives back '3rms'.
            value = value * rms if index == 1 else value / rms
            value = round(value, _LEVEL_DECIMALS[index])
        self._set_level(value, index)

    def update_other(self, *args: Any) -> None:
        """Show a level in the other unit."""
        if self.other is None or self.unit is None:
            return
        rms = float(self._rms() or 0.0)
        value = float(self.value.value())
        if rms <= 0:
            self.other.setText("")
        elif self.unit.currentIndex() == 0:
            self.other.setText(f"= {value * rms:.4g} K")
        else:
            self.other.setText(f"= {value / rms:.3g} rms")

    def get(self) -> Any:
        """The value for the detector: levels as ``'3rms'`` strings or K numbers."""
        if self.param.kind == "level":
            assert self.unit is not None
            value = float(self.value.value())
            return f"{value:g}rms" if self.unit.currentIndex() == 0 else value
        if self.param.kind == "bool":
            return bool(self.value.isChecked())
        if self.param.kind == "int":
            return int(self.value.value())
        return float(self.value.value())

    def _show_level(self, value: Any) -> None:
        number, unit = parse_level(value)
        self._set_level(number, 0 if unit == "rms" else 1)

    def set(self, value: Any) -> None:
        """Show ``value`` (a level as a number in K or a string such as ``'2.5rms'``)."""
        if self.param.kind == "level":
            self._show_level(value)
        elif self.param.kind == "bool":
            self.value.setChecked(bool(value))
        elif self.param.kind == "int":
            self.value.setValue(int(value))
        else:
            self.value.setValue(float(value))


def _estimate(data: np.ndarray, progress: Any = None) -> float:
    if progress is not None:
        progress.update(0.0, "estimating the noise rms")
    return float(estimate_rms(data))


class DetectDialog(WorkerDialogMixin, QtWidgets.QDialog, HubListener):
    """Detect clump candidates in a cube of the session.

    Parameters
    ----------
    session : glue Session
    data_collection : DataCollection
    parent : QWidget, optional

    Attributes
    ----------
    state : DetectState
    editors : dict
        Parameter name -> :class:`ParamEditor` of the current detector.
    catalog_data : Data or None
        The catalogue made (or updated) by the last run.
    last_message : (level, title, text) or None
    """

    def __init__(self, session: Any, data_collection: DataCollection,
                 parent: QtWidgets.QWidget | None = None) -> None:
        self._init_dialog(session, data_collection, parent, "detect_dialog.ui", DetectState())
        self.editors: dict[str, ParamEditor] = {}
        self.rms_worker: Worker | None = None
        self.catalog_data: Data | None = None
        self.last_message: tuple[str, str, str] | None = None
        self._cube_cache: tuple[Data, PPVCube] | None = None
        self._estimated: dict[str, float] = {}
        self._running_cube: Data | None = None

        self._refresh_choices()
        self._connections = autoconnect_callbacks_to_qt(self.state, self)
        self.state.add_callback("method", self._build_params)
        self.state.add_callback("cube_data", self._on_cube_changed)
        self.state.add_callback("rms", self._on_rms_changed)
        self.ui.button_run.clicked.connect(self.run)
        self.ui.button_close.clicked.connect(self.close)
        self.ui.button_estimate.clicked.connect(lambda: self.estimate_rms())
        self.ui.button_defaults.clicked.connect(self._reset_params)
        self.register_to_hub(data_collection.hub)
        self._build_params()
        self._on_cube_changed()
        self.ui.label_status.setText("Ready.")

    # -- messages ------------------------------------------------------------------------
    def show_message(self, level: str, title: str, text: str,
                     details: str | None = None) -> None:
        """Show ``text`` in the status line and in a non-blocking message box."""
        self.last_message = (level, title, text)
        self.ui.label_status.setText(text)
        show_message(self, level, title, text, details)

    # -- choices -------------------------------------------------------------------------
    def _refresh_choices(self) -> None:
        cubes = [d for d in self.data_collection if is_cube_data(d)]
        with delay_callback(self.state, "cube_data"):
            DetectState.cube_data.set_choices(self.state, cubes)

    def register_to_hub(self, hub: Any) -> None:
        for cls in (msg.DataCollectionAddMessage, msg.DataCollectionDeleteMessage):
            hub.subscribe(self, cls, handler=self._on_collection_changed)
        self._subscribed = True

    def _on_collection_changed(self, message: Any) -> None:
        self._refresh_choices()

    def _build_params(self, *args: Any) -> None:
        form = self.ui.form_params
        while form.rowCount():
            form.removeRow(0)
        self.editors = {}
        detector: Detector | None = available_detectors().get(str(self.state.method))
        if detector is None:
            self.ui.label_reference.setText("")
            return
        for param in detector.params:
            editor = ParamEditor(param, lambda: self.state.rms)
            label = QtWidgets.QLabel(param.name)
            label.setToolTip(param.doc)
            form.addRow(label, editor.widget)
            self.editors[param.name] = editor
        self.ui.label_reference.setText(detector.reference or "")

    def _reset_params(self) -> None:
        for editor in self.editors.values():
            editor.reset()

    def params(self) -> dict[str, Any]:
        """The parameters as the detector receives them (levels as ``'Nrms'`` or K)."""
        return {name: editor.get() for name, editor in self.editors.items()}

    # -- cube and rms --------------------------------------------------------------------
    def _cube(self, data: Data) -> PPVCube:
        if self._cube_cache is not None and self._cube_cache[0] is data:
            return self._cube_cache[1]
        cube = ppv_cube_from_data(data)
        self._cube_cache = (data, cube)
        return cube

    def _on_cube_changed(self, *args: Any) -> None:
        self._cube_cache = None
        data = self.state.cube_data
        if data is None:
            self.ui.label_rms_note.setText("no 3-D cube in this session: open one first")
            self.ui.button_run.setEnabled(False)
            return
        self.ui.button_run.setEnabled(not self.is_running)
        known = self._estimated.get(data.uuid)
        if known is None:
            meta = data.meta.get(META_RMS)
            if isinstance(meta, (int, float)) and np.isfinite(meta) and meta > 0:
                known = float(meta)
        if known is not None:
            self.state.rms = known
            self.ui.label_rms_note.setText("estimated from the cube")
        else:
            self.estimate_rms()

    @guarded("Cannot estimate the noise")
    def estimate_rms(self) -> None:
        """Estimate the cube's noise rms on a worker thread (result fills the rms box)."""
        data = self.state.cube_data
        if data is None:
            return
        if self.rms_worker is not None and self.rms_worker.outcome is None:
            return
        cube = self._cube(data)
        self.ui.label_rms_note.setText("estimating…")
        self.ui.button_estimate.setEnabled(False)
        worker = Worker(_estimate, cube.data)
        worker.succeeded.connect(lambda rms, d=data: self._on_rms_estimated(d, rms))
        worker.failed.connect(self._on_rms_failed)
        worker.done.connect(lambda: self.ui.button_estimate.setEnabled(True))
        self.rms_worker = worker
        worker.start()

    def _on_rms_estimated(self, data: Data, rms: float) -> None:
        self._estimated[data.uuid] = float(rms)
        if self.state.cube_data is data:
            self.state.rms = float(rms)
            self.ui.label_rms_note.setText("estimated from the cube")

    def _on_rms_failed(self, message: str, details: str) -> None:
        self.ui.label_rms_note.setText("")
        self.show_message("warning", "Cannot estimate the noise", message, details)

    def _on_rms_changed(self, *args: Any) -> None:
        data = self.state.cube_data
        if data is not None and self._estimated.get(data.uuid) is not None \
                and not np.isclose(self.state.rms, self._estimated[data.uuid]):
            self.ui.label_rms_note.setText("edited (estimate: "
                                           f"{self._estimated[data.uuid]:.4g} K)")
        for editor in self.editors.values():
            editor.update_other()

    # -- running -------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the detection on the worker thread; False if it could not start."""
        if self.is_running:
            return False
        data = self.state.cube_data
        if data is None:
            self.show_message("warning", "No cube", "Open a 3-D PPV cube first.")
            return False
        if not self.state.rms or self.state.rms <= 0:
            self.show_message("warning", "No noise level",
                              "The noise rms must be positive: estimate it or type it in K.")
            return False
        try:
            cube = self._cube(data)
        except Exception as exc:  # noqa: BLE001 - CubeError and kin, shown to the user
            self.show_message("warning", "Not a usable cube", *describe_exception(exc))
            return False
        self._running_cube = data
        self.last_message = None
        self._start_worker(Worker(detect_candidates_in_child, cube, str(self.state.method),
                                  self.params(), float(self.state.rms)))
        self._set_enabled(False)
        return True

    def _set_enabled(self, enabled: bool) -> None:
        for w in (self.ui.combosel_cube_data, self.ui.combosel_method, self.ui.value_rms,
                  self.ui.button_estimate, self.ui.group_params, self.ui.button_run):
            w.setEnabled(enabled)

    @guarded("Could not add the candidates to the session")
    def _on_succeeded(self, result: tuple[np.ndarray, Any]) -> None:
        mask, table = result
        cube = self._running_cube
        if cube is None or cube not in self.data_collection:
            raise ValueError("The cube was removed from the session during the detection; "
                             "the candidates were not added.")
        from ..integration.links import catalogs_of

        had = bool(catalogs_of(self.data_collection, cube))
        self.catalog_data = attach_candidates(self.data_collection, cube, mask, table)
        seconds = self.worker.elapsed if self.worker is not None else 0.0
        self.ui.label_status.setText(
            f"{len(table)} candidates found by {table.meta.get('detector', '?')} in "
            f"{seconds:.1f} s → catalogue {self.catalog_data.label!r}"
            + (" (updated)" if had else "") + ", joined to the cube on clump_id.")

    def _on_cancelled(self, result: Any) -> None:
        self.ui.label_status.setText("Detection cancelled; the session is unchanged.")

    def _on_failed(self, message: str, details: str) -> None:
        self.show_message("critical", "Detection failed", message, details)

    def _on_done(self) -> None:
        self._running_cube = None
        self._set_enabled(True)
        if self._close_requested:
            self._close_requested = False
            self.close()

    # -- showing and closing ------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        if not self._subscribed:  # closed earlier, shown again from the menu
            self.register_to_hub(self.data_collection.hub)
            self._refresh_choices()
        super().showEvent(event)
