"""The "Galaxy clumps (Faster R-CNN): detect & verify…" dialog.

Choose a galaxy image (one g,r,i FITS cube, three g, r, i FITS files or an RGB
PNG/JPEG), optionally fine-tune the detector on synthetic galaxies first, and detect
clumps on a :class:`~.worker.Worker` (progress bar, Cancel). The result goes into the
session on the GUI thread (:func:`~glue_ssclump.integration.galaxy_factory.
attach_galaxy_clumps`: the image, the clump catalogue with its boxes, links and the
verdict groups) and, in a glue application, an image viewer with the boxes and a table
viewer open (:func:`~.galaxy_viewer.show_galaxy`).

The verdict buttons give the clumps of the current selection (glue's edit subset: a
table selection or a region drawn on the image) the verdict clump, odd or rejected,
written back by :func:`~glue_ssclump.integration.galaxy_verdicts.set_verdict`.

Same plugin as the cube side: the worker, progress binding, closing rules and error
messages are :mod:`.worker`'s; the entry is registered by :mod:`.menus`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.exceptions import IncompatibleAttribute
from glue.core.hub import HubListener
from qtpy import QtWidgets

from ..integration.galaxy_factory import (
    attach_galaxy_clumps,
    compute_galaxy_clumps,
    galaxy_pairs,
    image_data_for,
)
from ..integration.galaxy_verdicts import GALAXY_VERDICTS, group_labels, set_verdict
from ..integration.pairing import META_SOURCE
from .galaxy_viewer import outline_regions, show_galaxy
from .worker import Worker, WorkerDialogMixin, guarded, show_message

log = logging.getLogger(__name__)

__all__ = ["GalaxyDialog", "GalaxyRun", "run_galaxy", "split_paths"]

_IMAGE_FILTER = "Galaxy images (*.fits *.fit *.fts *.fits.gz *.png *.jpg *.jpeg);;All files (*)"


def split_paths(text: str) -> list[str]:
    """The file paths typed in the dialog (separated by ``;``), blanks dropped."""
    return [p.strip() for p in str(text).split(";") if p.strip()]


@dataclass
class GalaxyRun:
    """What a galaxy run produced (on the worker thread); ``model`` is the fine-tuned
    detector (None when the run did not fine-tune)."""

    image: Any
    table: Any
    model: Any = None
    saved: str | None = None


def run_galaxy(paths: list[str], score_min: float, model: Any = None,
               finetune: dict[str, Any] | None = None, progress: Any = None) -> GalaxyRun:
    """Load (and optionally fine-tune) the detector, then detect clumps; no glue state.

    Parameters
    ----------
    paths : list of str
        The image file(s).
    score_min : float
        Lowest detection score kept.
    model : str or GalaxyModel, optional
        A detector checkpoint path or a detector; default the shipped model.
    finetune : dict, optional
        ``{"n": galaxies, "epochs": epochs, "save": path or None}``: fine-tune on that
        many synthetic galaxies first.
    progress : Progress, optional

    Returns
    -------
    GalaxyRun
    """
    from ..core.progress import ensure_progress

    progress = ensure_progress(progress)
    if isinstance(model, (str, Path)):
        from ..core.galaxy.model import load_galaxy_checkpoint

        model = load_galaxy_checkpoint(model)
    saved = None
    if finetune:
        model = _finetune(model, int(finetune["n"]), int(finetune["epochs"]),
                          progress.span(0.0, 0.8, "fine-tuning the detector"))
        if finetune.get("save"):
            from ..core.galaxy.model import save_galaxy_checkpoint

            saved = str(save_galaxy_checkpoint(finetune["save"], model))
        image, table = compute_galaxy_clumps(paths, score_min, model,
                                             progress.span(0.8, 1.0, "detecting clumps"))
        return GalaxyRun(image, table, model, saved)
    image, table = compute_galaxy_clumps(paths, score_min, model, progress)
    return GalaxyRun(image, table)


def _finetune(model: Any, n: int, epochs: int, progress: Any) -> Any:
    """Fine-tune ``model`` (default: the shipped one) on ``n`` synthetic galaxies."""
    from ..core.galaxy.model import load_default_model
    from ..core.galaxy.train import train_detector

    if model is None:
        model = load_default_model()
    model, _history = train_detector(n_train=n, epochs=epochs, init=model, progress=progress)
    return model


class GalaxyDialog(WorkerDialogMixin, QtWidgets.QDialog, HubListener):
    """Detect clumps in galaxy images and give them verdicts.

    Parameters
    ----------
    session : glue Session
    data_collection : DataCollection
    parent : QWidget, optional

    Attributes
    ----------
    image_data, clump_data : Data or None
        The datasets made (or updated) by the last run.
    viewer : ImageViewer or None
        The image viewer opened for them.
    model : GalaxyModel or None
        The detector fine-tuned by the last fine-tuning run; later runs use it unless
        a checkpoint is given.
    last_message : (level, title, text) or None
    """

    def __init__(self, session: Any, data_collection: DataCollection,
                 parent: QtWidgets.QWidget | None = None) -> None:
        self._init_dialog(session, data_collection, parent, "galaxy_dialog.ui", None)
        self.image_data: Data | None = None
        self.clump_data: Data | None = None
        self.viewer: Any = None
        self.model: Any = None
        self.last_message: tuple[str, str, str] | None = None
        self.ui.button_run.clicked.connect(self.run)
        self.ui.button_close.clicked.connect(self.close)
        self.ui.button_browse.clicked.connect(self._browse_image)
        self.ui.button_model.clicked.connect(self._browse_model)
        self.ui.group_finetune.toggled.connect(self._on_finetune_toggled)
        for verdict in GALAXY_VERDICTS:
            button = getattr(self.ui, f"button_{verdict}")
            button.clicked.connect(lambda *args, v=verdict: self.mark(v))
        self.ui.label_status.setText("Ready.")

    # -- messages ---------------------------------------------------------------------------
    def show_message(self, level: str, title: str, text: str,
                     details: str | None = None) -> None:
        """Show ``text`` in the status line and in a non-blocking message box."""
        self.last_message = (level, title, text)
        self.ui.label_status.setText(text)
        show_message(self, level, title, text, details)

    # -- input ------------------------------------------------------------------------------
    def set_paths(self, paths: list[str] | str) -> None:
        """Put image path(s) in the dialog (three FITS in the order g, r, i)."""
        if isinstance(paths, (str, Path)):
            paths = [str(paths)]
        self.ui.text_paths.setText("; ".join(str(p) for p in paths))

    def _browse_image(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Galaxy image: one g,r,i FITS, three FITS (g, r, i) or a PNG / JPEG",
            "", _IMAGE_FILTER)
        if paths:
            self.set_paths(paths)

    def _browse_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Detector checkpoint", "", "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.ui.text_model.setText(path)

    def _on_finetune_toggled(self, checked: bool) -> None:
        self.ui.button_run.setText("Fine-tune && detect" if checked else "Detect clumps")

    # -- running ----------------------------------------------------------------------------
    def run(self) -> bool:
        """Start the run on the worker thread; False if it could not start."""
        if self.is_running:
            return False
        paths = split_paths(self.ui.text_paths.text())
        if not paths:
            self.show_message("warning", "No image",
                              "Choose a galaxy image: one g,r,i FITS cube, three FITS files "
                              "(g; r; i) or an RGB PNG / JPEG.")
            return False
        finetune = None
        if self.ui.group_finetune.isChecked():
            finetune = {"n": self.ui.value_n_train.value(),
                        "epochs": self.ui.value_epochs.value(),
                        "save": self.ui.text_save.text().strip() or None}
        # A checkpoint typed in wins; else the detector fine-tuned here last, if any.
        model = self.ui.text_model.text().strip() or self.model
        self.last_message = None
        self._start_worker(Worker(run_galaxy, paths, float(self.ui.value_score_min.value()),
                                  model, finetune))
        self._set_enabled(False)
        return True

    def _set_enabled(self, enabled: bool) -> None:
        for w in (self.ui.group_input, self.ui.group_finetune, self.ui.group_verdicts,
                  self.ui.button_run):
            w.setEnabled(enabled)

    @guarded("Could not add the clumps to the session")
    def _on_succeeded(self, result: GalaxyRun) -> None:
        if result.model is not None:  # fine-tuned: used by this dialog's next runs
            self.model = result.model
            self.ui.text_model.setPlaceholderText(
                "the detector fine-tuned in this dialog (or a checkpoint .pt)")
        existing = self._image_for(result.image)
        self.image_data, self.clump_data = attach_galaxy_clumps(
            self.data_collection, result.image, result.table, image_data=existing)
        seconds = self.worker.elapsed if self.worker is not None else 0.0
        if self.clump_data is None:
            text = (f"No clump at score ≥ {self.ui.value_score_min.value():.2f} in "
                    f"{self.image_data.label!r} ({seconds:.1f} s); lower the minimum score "
                    "to see weaker candidates")
        else:
            classes = np.asarray(result.table["class"], dtype=str)
            text = (f"{len(result.table)} clumps ({int((classes == 'clump').sum())} clump, "
                    f"{int((classes == 'odd').sum())} odd) in {seconds:.1f} s → "
                    f"{self.clump_data.label!r}")
        if result.saved:
            text += f"; detector saved as {Path(result.saved).name}"
        self.ui.label_status.setText(text + ".")
        self.ui.label_status.setToolTip(f"fine-tuned detector: {result.saved}"
                                        if result.saved else "")
        app = getattr(self.session, "application", None)
        if app is None or not hasattr(app, "new_data_viewer"):
            return
        # A re-detection replaced the catalogue: viewers of the image get the new boxes.
        shown = [v for tab in getattr(app, "viewers", []) for v in tab
                 if getattr(getattr(v, "state", None), "reference_data", None)
                 is self.image_data]
        for viewer in shown:
            if self.clump_data is not None:
                viewer.add_data(self.clump_data)
                outline_regions(viewer)
        self.viewer = shown[-1] if shown else show_galaxy(app, self.image_data,
                                                            self.clump_data)

    def _image_for(self, image: Any) -> Data | None:
        """The session's image dataset read from the same file(s), if any."""
        path = getattr(image, "path", None)
        for image_data, _ in galaxy_pairs(self.data_collection):
            if path and image_data.meta.get(META_SOURCE) == str(path):
                return image_data
        return None

    def _on_cancelled(self, result: Any) -> None:
        self.ui.label_status.setText("Cancelled; the session is unchanged.")

    def _on_failed(self, message: str, details: str) -> None:
        self.show_message("critical", "Galaxy clump detection failed", message, details)

    def _on_done(self) -> None:
        self._set_enabled(True)
        if self._close_requested:
            self._close_requested = False
            self.close()

    # -- verdicts ---------------------------------------------------------------------------
    def current_clumps(self) -> Data | None:
        """The clump catalogue the verdict buttons act on (the last one made)."""
        if self.clump_data is not None and self.clump_data in self.data_collection:
            return self.clump_data
        pairs = galaxy_pairs(self.data_collection)
        return pairs[-1][1] if pairs else None

    def selected_rows(self, clump_data: Data) -> np.ndarray:
        """Boolean row mask of the current selection on ``clump_data``.

        The selection is glue's edit subset (what the next table selection or region
        replaces); when none is being edited, the newest subset group that is not a
        verdict group.
        """
        verdict_groups = {label for _, clumps in galaxy_pairs(self.data_collection)
                          for label in group_labels(clumps).values()}
        mode = getattr(self.session, "edit_subset_mode", None)
        groups = [g for g in (getattr(mode, "edit_subset", None) or [])
                  if g.label not in verdict_groups]
        if not groups:
            groups = [g for g in self.data_collection.subset_groups
                      if g.label not in verdict_groups][-1:]
        mask = np.zeros(clump_data.size, dtype=bool)
        for group in groups:
            for subset in group.subsets:
                if subset.data is not clump_data:
                    continue
                try:
                    mask |= np.asarray(subset.to_mask(), dtype=bool)
                except IncompatibleAttribute:
                    continue
        return mask

    @guarded("Could not set the verdicts")
    def mark(self, verdict: str) -> int:
        """Give the selected clumps ``verdict`` ('clump', 'odd' or 'rejected')."""
        clumps = self.current_clumps()
        if clumps is None:
            self.show_message("warning", "No clumps", "Detect clumps in a galaxy image first.")
            return 0
        rows = self.selected_rows(clumps)
        if not rows.any():
            self.show_message("information", "Nothing selected",
                              "Select clumps in the table viewer, or draw a region on the "
                              "image, then choose a verdict.")
            return 0
        # The first verdict makes the groups (a factory-opened pair); set_subset_group
        # keeps them from becoming the edit subset the next selection would replace.
        n = set_verdict(self.data_collection, clumps, rows, verdict)
        image = image_data_for(self.data_collection, clumps)
        where = f" of {image.label!r}" if image is not None else ""
        self.ui.label_status.setText(f"{n} clump(s){where} marked {verdict!r}.")
        return n
