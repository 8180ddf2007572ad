"""The viewer's side panel: candidate info, label buttons, navigation (``side_panel.ui``)."""

from __future__ import annotations

import os

from glue_qt.utils import load_ui
from qtpy import QtCore, QtWidgets

from ...core.labels import LABEL_CLUMP, LABEL_COLOURS, LABEL_NOT_CLUMP, LABEL_UNCERTAIN

__all__ = ["SidePanel"]


class SidePanel(QtWidgets.QWidget):
    """Title, position, info table, label / navigation buttons and status lines.

    The layout and styles are in ``side_panel.ui``; this class only turns the buttons
    into requests for the viewer.

    Notes
    -----
    Signals: ``label_requested(int)`` (a label code), ``previous_requested()``,
    ``next_requested()``, ``undo_requested()``, ``goto_requested(int)`` (a clump id
    typed in the "Go to id" box) and ``import_requested()``.
    """

    label_requested = QtCore.Signal(int)
    previous_requested = QtCore.Signal()
    next_requested = QtCore.Signal()
    undo_requested = QtCore.Signal()
    goto_requested = QtCore.Signal(int)
    import_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.ui = load_ui("side_panel.ui", self, directory=os.path.dirname(__file__))
        #: Label code -> its button.
        self.buttons: dict[int, QtWidgets.QPushButton] = {
            LABEL_CLUMP: self.ui.button_clump,
            LABEL_NOT_CLUMP: self.ui.button_not_clump,
            LABEL_UNCERTAIN: self.ui.button_uncertain,
        }
        for code, button in self.buttons.items():
            # The colours are the labels' own (core.labels), shared with the tables.
            button.setStyleSheet(f"QPushButton {{ color: {LABEL_COLOURS[code]}; "
                                 "font-size: 12px; font-weight: bold; padding: 4px; }")
            button.clicked.connect(lambda _=False, c=code: self.label_requested.emit(c))
        self.ui.prev_button.clicked.connect(lambda _=False: self.previous_requested.emit())
        self.ui.next_button.clicked.connect(lambda _=False: self.next_requested.emit())
        self.ui.undo_button.clicked.connect(lambda _=False: self.undo_requested.emit())
        self.ui.import_button.clicked.connect(lambda _=False: self.import_requested.emit())
        self.ui.goto_box.editingFinished.connect(
            lambda: self.goto_requested.emit(int(self.ui.goto_box.value())))

    def set_navigation_enabled(self, candidate: bool, undo: bool) -> None:
        """Enable the label and move buttons (a candidate is shown) and Undo."""
        for button in (*self.buttons.values(), self.ui.prev_button, self.ui.next_button):
            button.setEnabled(candidate)
        self.ui.undo_button.setEnabled(undo)

    def show_goto(self, clump_id: int) -> None:
        """Put ``clump_id`` in the "Go to id" box without emitting a request."""
        self.ui.goto_box.blockSignals(True)
        self.ui.goto_box.setValue(int(clump_id))
        self.ui.goto_box.blockSignals(False)
