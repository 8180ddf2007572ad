"""Active learning in the train dialog: the candidates to label next, and the viewer.

After a run, the unlabelled candidates nearest the threshold are listed in the
dialog's table (:meth:`UncertainList.show`); the list is opened in the verification
viewer, whose navigation is restricted to it in that order
(:meth:`~.viewer.VerificationViewer.set_navigation_ids`); the labels given there are
followed in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from glue.core.data import Data
from qtpy import QtCore, QtWidgets

from ..core.jobs import TrainOutcome
from ..core.labels import LABEL_NAMES, LABEL_NONE
from ..core.seeds import uncertain_rows
from ..integration.pairing import KEY
from ..integration.writeback import LABEL, VERDICT

__all__ = ["UncertainList", "labels_for"]

_COLUMNS = ["clump_id", "p_clump", "verdict", "label"]


def labels_for(catalog: Data, ids: np.ndarray) -> np.ndarray:
    """The manual label codes of candidates, by id.

    Parameters
    ----------
    catalog : Data
        The candidate catalogue.
    ids : ndarray of int
        Candidate ids.

    Returns
    -------
    ndarray of int
        One code per id; ``LABEL_NONE`` where the catalogue has no label column or no
        such candidate.
    """
    out = np.full(ids.size, LABEL_NONE, dtype=np.int64)
    if LABEL not in {c.label for c in catalog.main_components}:
        return out
    keys = np.asarray(catalog[KEY], dtype=np.int64)
    values = np.asarray(catalog[LABEL], dtype=np.int64)
    pos = {int(k): i for i, k in enumerate(keys)}
    for i, cid in enumerate(ids.tolist()):
        j = pos.get(cid)
        if j is not None:
            out[i] = values[j]
    return out


def _all_viewers(app: Any) -> list[Any]:
    viewers = getattr(app, "viewers", ())
    out: list[Any] = []
    for tab in viewers:
        out.extend(tab if isinstance(tab, (list, tuple)) else [tab])
    return out


class UncertainList:
    """The dialog's list of candidates to label next, and its link to the viewer.

    Parameters
    ----------
    ui : object
        The dialog's widgets: ``table_uncertain``, ``label_active``,
        ``button_open_viewer`` and ``button_retrain``.
    session : glue Session
        Gives the application, where the verification viewer is found or opened.

    Attributes
    ----------
    ids : ndarray of int
        The listed candidates, most uncertain first.
    """

    def __init__(self, ui: Any, session: Any) -> None:
        self.ui = ui
        self.session = session
        self.ids = np.empty(0, dtype=np.int64)
        self._queue = np.empty(0, dtype=np.int64)  # given to the viewer, not yet labelled
        table = ui.table_uncertain
        table.setMinimumHeight(90)
        table.setMaximumHeight(160)
        table.setColumnCount(len(_COLUMNS))
        table.setHorizontalHeaderLabels(_COLUMNS)
        header = table.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(3, QtWidgets.QHeaderView.Stretch)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.set_enabled(False)

    def set_enabled(self, enabled: bool) -> None:
        """Enable the table and its "open in viewer" button.

        Parameters
        ----------
        enabled : bool
        """
        self.ui.button_open_viewer.setEnabled(enabled)
        self.ui.table_uncertain.setEnabled(enabled)

    def show(self, outcome: TrainOutcome, catalog: Data, n: int) -> None:
        """List the ``n`` unlabelled candidates nearest the threshold after a run.

        Parameters
        ----------
        outcome : TrainOutcome
            A completed run.
        catalog : Data
            The candidate catalogue (for the labels given since).
        n : int
            Number of candidates to list.
        """
        v = outcome.verification
        ids = np.asarray(v.catalog[KEY], dtype=np.int64)
        labels = labels_for(catalog, ids)
        # Seeds of the run (subsets included) and held-out candidates are labelled too.
        known = (labels != LABEL_NONE) | (np.asarray(outcome.job.codes) != LABEL_NONE)
        if outcome.job.heldout is not None:
            known[np.asarray(outcome.job.heldout[0])] = True
        rows = uncertain_rows(v.p_clump, v.threshold, known, n)
        self.ids = ids[rows]
        table = self.ui.table_uncertain
        table.setRowCount(rows.size)
        verdict = np.asarray(v.catalog[VERDICT]).astype(str)
        for i, r in enumerate(rows):
            for j, text in enumerate((str(ids[r]), f"{v.p_clump[r]:.3f}", verdict[r],
                                      LABEL_NAMES.get(int(labels[r]), ""))):
                item = QtWidgets.QTableWidgetItem(text)
                if j < 2:
                    item.setTextAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignVCenter)
                table.setItem(i, j, item)
        if rows.size:
            self.ui.label_active.setText(
                f"{rows.size} unlabelled candidates nearest p = {v.threshold:.2f}, most "
                "uncertain first. Label them in the verification viewer, then retrain.")
        else:
            self.ui.label_active.setText("Every candidate is labelled or was a seed.")
        self.ui.button_retrain.setText("Retrain with new labels")
        self.set_enabled(rows.size > 0)

    def follow_labels(self, catalog: Data | None) -> None:
        """Show the labels given since, and say so once the viewer's list is done.

        Parameters
        ----------
        catalog : Data or None
            The candidate catalogue.
        """
        if catalog is None:
            return
        if self.ids.size and self.ids.size == self.ui.table_uncertain.rowCount():
            labels = labels_for(catalog, self.ids)
            for i, code in enumerate(labels.tolist()):
                item = self.ui.table_uncertain.item(i, 3)
                if item is not None:
                    item.setText(LABEL_NAMES.get(int(code), ""))
            done = int(np.sum(labels != LABEL_NONE))
            self.ui.button_retrain.setText(f"Retrain with new labels ({done} new)" if done
                                           else "Retrain with new labels")
        if self._queue.size and np.all(labels_for(catalog, self._queue) != LABEL_NONE):
            self._queue = np.empty(0, dtype=np.int64)
            self._say_all_labelled()

    def open_in_viewer(self, catalog: Data | None, ids: Sequence[int] | None = None) -> Any:
        """Open (or reuse) the verification viewer and navigate it through ``ids``.

        The unlabelled candidates among ``ids`` are given to the viewer's
        :meth:`~.viewer.VerificationViewer.set_navigation_ids`, in order: it shows the
        first one, and its keys (j / k, arrows, Home / End) and its move after a label
        (if its "advance after label" option is on, the default) go through that list
        only.  If every one is labelled already, the whole list is given for review.

        Parameters
        ----------
        catalog : Data or None
            The candidate catalogue.
        ids : sequence of int, optional
            Candidate ids in the order to visit; default the listed ones.

        Returns
        -------
        VerificationViewer

        Raises
        ------
        ValueError
            With no catalogue or no candidate, or without the glue application.
        """
        ids = self.ids if ids is None else np.asarray(ids, dtype=np.int64)
        if catalog is None or len(ids) == 0:
            raise ValueError("No uncertain candidate to show: run a training first.")
        todo = ids[labels_for(catalog, ids) == LABEL_NONE]
        viewer = self._viewer_for(catalog)
        viewer.set_navigation_ids(todo if todo.size else ids)
        self._queue = todo
        if todo.size == 0:
            self._say_all_labelled()
        return viewer

    def _viewer_for(self, catalog: Data) -> Any:
        from .viewer import VerificationViewer

        app = getattr(self.session, "application", None)
        if app is None:
            raise ValueError("The verification viewer needs the glue application window.")
        for viewer in _all_viewers(app):
            if isinstance(viewer, VerificationViewer) and viewer.state.catalog_data is catalog:
                return viewer
        return app.new_data_viewer(VerificationViewer, data=catalog)

    def _say_all_labelled(self) -> None:
        self.ui.label_active.setText("Every listed candidate is labelled: retrain to use "
                                     "the new labels.")
