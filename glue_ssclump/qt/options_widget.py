"""Options panel of the verification viewer (``options_widget.ui``, autoconnected)."""

from __future__ import annotations

import os
from typing import Any

from echo.qt import autoconnect_callbacks_to_qt
from glue_qt.utils import load_ui
from qtpy import QtWidgets

from .state import VerificationViewerState

__all__ = ["VerificationOptionsWidget"]


class VerificationOptionsWidget(QtWidgets.QWidget):
    """Datasets, navigation order, cut-out margin and autosave path.

    Widgets are named ``<kind>_<state attribute>`` in the .ui file, so
    :func:`echo.qt.autoconnect_callbacks_to_qt` keeps them and the state in sync both ways.

    Parameters
    ----------
    viewer_state : VerificationViewerState
    session : glue.core.session.Session
    parent : QWidget, optional
    """

    def __init__(self, viewer_state: VerificationViewerState, session: Any,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.ui = load_ui("options_widget.ui", self, directory=os.path.dirname(__file__))
        self.viewer_state = viewer_state
        self.session = session
        self._connections = autoconnect_callbacks_to_qt(
            viewer_state, self.ui, {"margin_frac": {}, "margin_min": {}})
        self.ui.browse_autosave.clicked.connect(self._browse)
        viewer_state.add_callback("order", self._update_seed_enabled)
        self._update_seed_enabled()

    def _update_seed_enabled(self, *args: Any) -> None:
        self.ui.value_seed.setEnabled(self.viewer_state.order == "random")

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Autosave labels to", self.viewer_state.autosave_path or "labels.csv",
            "CSV files (*.csv)")
        if path:
            self.viewer_state.autosave_path = path
