"""Labels in the verification viewer: keys and buttons, undo, import and autosave.

The bookkeeping is :class:`~glue_ssclump.integration.labelling.LabelBook`'s; this part
adds what a person sees: the move after a label, status lines and message boxes.
"""

from __future__ import annotations

import time
from pathlib import Path

from qtpy import QtWidgets

from ...core.labels import LabelsError
from ...integration.labelling import LabelBook

__all__ = ["LabelsMixin"]


class LabelsMixin:
    """Part of :class:`~glue_ssclump.qt.viewer.VerificationViewer`: its labels."""

    def _init_labels(self) -> None:
        self._book: LabelBook | None = None
        self._autosave_error_shown = False
        #: The sidecar CSV last written (None before the first autosave).
        self.last_autosave: Path | None = None
        self._autosave_time = ""

    def set_label(self, code: int) -> None:
        """Label the current candidate (1 clump, 0 not clump, 2 uncertain).

        Written through ``write_verdicts`` (catalogue ``label`` component and the
        "Labelled" subset groups), autosaved to the sidecar CSV, and undoable.
        """
        row = self._current_row()
        if self._book is None or row is None:
            return
        self._book.set_label(row, int(code))
        self._autosave()
        self._update_panel()
        if self.state.advance_after_label:
            self.next_candidate()

    def undo(self) -> bool:
        """Undo the last label (or import) and go back to that candidate."""
        entries = None if self._book is None else self._book.undo()
        if not entries:
            self.status("nothing to undo")
            return False
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
        return {} if self._book is None else self._book.labels()

    def _autosave(self) -> Path | None:
        if self._book is None or not self.state.autosave_path:
            return None
        path = Path(str(self.state.autosave_path)).expanduser()
        try:
            self._book.autosave(path)
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
        if self._book is None:
            raise LabelsError("no catalogue in the viewer")
        read, changed = self._book.import_csv(path)
        self._update_panel()
        self._autosave()
        self.status(f"imported {read} labels from {path} ({changed} changed)")
        return changed

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
        """Pick up the autosaved labels of an earlier run (see ``LabelBook``)."""
        if self._book is None:
            return ""
        note, new_path = self._book.recover_sidecar(self.state.autosave_path)
        if new_path is not None:
            self.state.autosave_path = str(new_path)
        if note.startswith("restored"):
            self._update_panel()
        return note
