"""The "SS-3D-Clump: train & verify…" dialog: fine-tune on labelled candidates, verify all.

What the dialog does (METHOD.md sections 4-6; the paper's Sect. 3.3 and Appendix D):

* **Seeds** come from the catalogue's manual ``label`` column (1 clump, 0 not clump;
  uncertain labels never seed) and/or from two glue subsets (one of clumps, one of
  non-clumps).  The **pool** of candidates trained on is all of them or a subset -- a
  region, for the paper's "retraining on a new region".  The counts are shown as the
  choices change; a class with no seed is refused, fewer than 5 warns.  Optionally a
  share of the seeds is held out to score P / R / F1 after every epoch.
* **Model**: the shipped default checkpoint, new weights, or a checkpoint file;
  epochs and device up front, the other :class:`~glue_ssclump.core.training.TrainConfig`
  settings, the threshold and the uncertain band in a folded "Advanced" group.
  "Verify only" applies a model without training.
* **Run**: :func:`~glue_ssclump.core.pipeline.verify` runs on a :class:`~.worker.Worker`
  thread.  Its progress drives a bar with ETA; every finished epoch reaches
  :class:`LivePlots` through a signal (loss, NMI stability, the p(clump) histogram as
  in the paper's Fig. D.1, P/R/F1 or pseudo-label counts).  Cancel stops within one
  batch; the last completed epoch's model is kept (and saved) and the catalogue is not
  touched.
* **Completion** (GUI thread): ``p_clump`` and ``verdict`` are written with
  :func:`~glue_ssclump.integration.writeback.write_verdicts` (components and the
  verdict subset groups update in every view), the checkpoint, training log and plot
  are saved in a run folder whose path is shown.
* **Active learning**: the unlabelled candidates nearest the threshold are listed and
  opened in the verification viewer, whose navigation is restricted to them in that
  order (:meth:`~.viewer.VerificationViewer.set_navigation_ids`); "Retrain with new
  labels" runs again with the same settings and the labels given since.

The dialog only reads glue objects on the GUI thread: the cube, mask and seeds are
copied into a :class:`~glue_ssclump.core.jobs.TrainJob` before the run starts,
and the run goes to a child process (:func:`~glue_ssclump.core.jobs.run_job_in_child`):
nothing it does can hold the GIL of the process that draws the interface.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from echo import delay_callback
from echo.qt import autoconnect_callbacks_to_qt
from glue.core import message as msg
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.exceptions import IncompatibleAttribute
from glue.core.hub import HubListener
from qtpy import QtCore, QtWidgets

from ..core.jobs import TrainJob, TrainOutcome, run_job_in_child
from ..core.labels import LABEL_NAMES, LABEL_NONE
from ..core.seeds import SeedPlan, plan_seeds, uncertain_rows
from ..core.training import DEFAULT_CHECKPOINT, EpochRecord
from ..integration.factory import ppv_cube_from_data
from ..integration.pairing import KEY, cube_data_for, is_candidate_catalog
from ..integration.run_folder import default_output_dir, new_run_dir
from ..integration.selection import candidates_in_region
from ..integration.writeback import LABEL, VERDICT, write_verdicts
from .live_plots import LivePlots, freeze_height
from .train_state import TrainState, pool_label
from .worker import Worker, WorkerDialogMixin, guarded, show_message

log = logging.getLogger(__name__)

__all__ = ["TrainDialog"]

_WARN = "#b35900"
_ERROR = "#c0392b"


def _plan_html(plan: SeedPlan) -> str:
    """A seed plan's counts, warnings and errors as rich text for a label."""
    pool = ("all candidates" if plan.pool is None
            else f"{plan.n_pool} of {plan.n_total} candidates")
    lines = [f"Seeds in the pool: <b>{plan.n_clump}</b> clump, "
             f"<b>{plan.n_not_clump}</b> not clump; pool: {pool}"]
    if plan.n_heldout:
        lines.append(f"{plan.n_heldout} labelled candidates held out for P/R/F1")
    lines += [f"<span style='color:{_WARN}'>⚠ {w}</span>" for w in plan.warnings]
    lines += [f"<span style='color:{_ERROR}'>✖ {e}</span>" for e in plan.errors]
    return "<br>".join(lines)


# -- the dialog -------------------------------------------------------------------------

class TrainDialog(WorkerDialogMixin, QtWidgets.QDialog, HubListener):
    """Train SS-3D-Clump on labelled candidates and verify every candidate.

    Parameters
    ----------
    session : glue Session
        Gives the application (for the verification viewer) and the session file.
    data_collection : DataCollection
        The session's datasets and subset groups.
    parent : QWidget, optional

    Attributes
    ----------
    state : TrainState
        The settings shown in the dialog.
    worker : Worker or None
        The running (or last) worker.
    last_outcome : TrainOutcome or None
        The last completed or cancelled run.
    last_model : torch.nn.Module or None
        Its model (the last completed epoch's after a cancel).
    last_message : (level, title, text) or None
        The last message shown (also in the status line).
    """

    def __init__(self, session: Any, data_collection: DataCollection,
                 parent: QtWidgets.QWidget | None = None) -> None:
        self._init_dialog(session, data_collection, parent, "train_dialog.ui", TrainState())
        self.last_outcome: TrainOutcome | None = None
        self.last_model: Any = None
        self.last_message: tuple[str, str, str] | None = None
        self.uncertain_ids = np.empty(0, dtype=np.int64)
        self._queue = np.empty(0, dtype=np.int64)
        self._plan: SeedPlan | None = None
        self._auto_out_dir = ""
        self._running_catalog: Data | None = None
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_now)

        self.plots = LivePlots(self)
        self.ui.layout_plots.addWidget(self.plots)
        # The settings column is as wide as its widest row (advanced rows included), so
        # the scroll area never clips fields; the plots take the remaining width.
        scrollbar = self.ui.scroll_left.verticalScrollBar().sizeHint().width()
        width = self.ui.scroll_contents.minimumSizeHint().width() + scrollbar + 6
        self.ui.scroll_left.setMinimumWidth(width)
        self.ui.widget_left.setMaximumWidth(width + 60)
        self.ui.layout_root.setStretch(0, 0)
        self.ui.layout_root.setStretch(1, 1)
        self.ui.layout_right.setStretch(0, 1)
        self.ui.layout_right.setStretch(1, 0)
        self.ui.table_uncertain.setMinimumHeight(90)
        self.ui.table_uncertain.setMaximumHeight(160)
        self.ui.widget_advanced.setVisible(False)
        self.ui.button_advanced.toggled.connect(self._toggle_advanced)
        freeze_height(self.ui.label_status, 2)
        self.ui.table_uncertain.setColumnCount(4)
        self.ui.table_uncertain.setHorizontalHeaderLabels(
            ["clump_id", "p_clump", "verdict", "label"])
        header = self.ui.table_uncertain.horizontalHeader()
        for column in range(3):
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(3, QtWidgets.QHeaderView.Stretch)
        self.ui.table_uncertain.verticalHeader().setVisible(False)
        self.ui.table_uncertain.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.ui.table_uncertain.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.ui.table_uncertain.cellDoubleClicked.connect(self._show_row_in_viewer)

        self._refresh_choices()
        self._connections = autoconnect_callbacks_to_qt(self.state, self)
        for name in ("catalog_data", "use_labels", "clump_subset", "not_clump_subset",
                     "pool_subset", "holdout_percent", "seed", "mode"):
            self.state.add_callback(name, self._schedule_refresh)
        self.state.add_callback("catalog_data", self._on_catalog_changed)
        for name in ("mode", "init", "threshold_rule"):
            self.state.add_callback(name, self._update_enabled)
        self.state.add_callback("device", self._update_device_label)
        self.state.add_callback("n_uncertain", self._on_n_uncertain)
        self.ui.button_run.clicked.connect(self.run)
        self.ui.button_close.clicked.connect(self.close)
        self.ui.button_browse_checkpoint.clicked.connect(self._browse_checkpoint)
        self.ui.button_browse_out.clicked.connect(self._browse_out_dir)
        self.ui.button_open_viewer.clicked.connect(lambda: self.open_uncertain_in_viewer())
        self.ui.button_retrain.clicked.connect(self.retrain)
        self.register_to_hub(data_collection.hub)

        self._on_catalog_changed()
        self._update_enabled()
        self._update_device_label()
        self._set_active_learning_enabled(False)
        self.ui.label_saved.setText("")
        self.ui.label_status.setText("Ready.")
        self.refresh_counts()
        self.state.add_callback("epochs", self._preview_plots)
        self._preview_plots()

    # -- messages ------------------------------------------------------------------------
    def show_message(self, level: str, title: str, text: str,
                     details: str | None = None) -> None:
        """Show ``text`` in the status line and in a non-blocking message box."""
        self.last_message = (level, title, text)
        colour = {"critical": _ERROR, "warning": _WARN}.get(level, "#222222")
        self.ui.label_status.setText(f"<span style='color:{colour}'>{_html(text)}</span>")
        show_message(self, level, title, text, details)

    # -- glue hub ------------------------------------------------------------------------
    def register_to_hub(self, hub: Any) -> None:
        for cls in (msg.SubsetCreateMessage, msg.SubsetUpdateMessage, msg.SubsetDeleteMessage,
                    msg.DataCollectionAddMessage, msg.DataCollectionDeleteMessage,
                    msg.NumericalDataChangedMessage, msg.DataAddComponentMessage):
            hub.subscribe(self, cls, handler=self._on_hub_message)
        self._subscribed = True

    def _on_hub_message(self, message: Any) -> None:
        # Only what changes the choices, the counts or the labels: a selection dragged
        # in a viewer sends a subset update per mouse move.
        if isinstance(message, msg.SubsetUpdateMessage):
            group = getattr(message.subset, "group", None)
            chosen = (self.state.clump_subset, self.state.not_clump_subset,
                      self.state.pool_subset)
            if group is None or (group not in chosen and message.attribute != "label"):
                return
        elif isinstance(message, (msg.NumericalDataChangedMessage,
                                  msg.DataAddComponentMessage)):
            if message.sender is not self.state.catalog_data:
                return
        self._schedule_refresh()

    def _schedule_refresh(self, *args: Any) -> None:
        # Bursts of messages (write_verdicts, subset edits) give one refresh after them.
        self._refresh_timer.start()

    def _refresh_now(self) -> None:
        try:
            self._refresh_choices()
            self.refresh_counts()
            self._refresh_uncertain_labels()
            self._follow_labels()
        except RuntimeError:  # the dialog's widgets were deleted (application closing)
            pass

    def _refresh_choices(self) -> None:
        dc = self.data_collection
        catalogs = [d for d in dc if is_candidate_catalog(d)]
        groups = list(dc.subset_groups)
        with delay_callback(self.state, "catalog_data", "clump_subset",
                            "not_clump_subset", "pool_subset"):
            TrainState.catalog_data.set_choices(self.state, catalogs)
            for name in ("clump_subset", "not_clump_subset", "pool_subset"):
                getattr(TrainState, name).set_choices(self.state, [None, *groups])

    def _on_catalog_changed(self, *args: Any) -> None:
        cat = self.state.catalog_data
        if cat is None:
            return
        auto = str(default_output_dir(cat, self.session))
        if not self.state.out_dir or self.state.out_dir == self._auto_out_dir:
            self.state.out_dir = auto
        self._auto_out_dir = auto

    # -- widgets -------------------------------------------------------------------------
    def _toggle_advanced(self, shown: bool) -> None:
        self.ui.widget_advanced.setVisible(shown)
        self.ui.button_advanced.setArrowType(QtCore.Qt.DownArrow if shown
                                             else QtCore.Qt.RightArrow)

    def _update_enabled(self, *args: Any) -> None:
        running = self.is_running
        train = self.state.mode == "train"
        for w in (self.ui.group_seeds, self.ui.value_epochs, self.ui.combosel_optimizer,
                  self.ui.value_lr, self.ui.value_select_ratio, self.ui.value_batch_size,
                  self.ui.value_passes, self.ui.value_seed, self.ui.value_holdout_percent):
            w.setEnabled(train and not running)
        checkpoint = self.state.init == "checkpoint"
        self.ui.text_checkpoint_path.setEnabled(checkpoint and not running)
        self.ui.button_browse_checkpoint.setEnabled(checkpoint and not running)
        for w in (self.ui.combosel_catalog_data, self.ui.combosel_mode, self.ui.combosel_init,
                  self.ui.combosel_device, self.ui.combosel_threshold_rule,
                  self.ui.value_uncertain_band, self.ui.text_out_dir,
                  self.ui.button_browse_out):
            w.setEnabled(not running)
        self.ui.value_threshold.setEnabled(self.state.threshold_rule == "fixed"
                                           and not running)
        self.ui.button_run.setText("Train && verify" if train else "Verify")
        self.ui.button_run.setEnabled(not running)
        self.ui.button_retrain.setEnabled(not running and self.last_outcome is not None
                                          and not self.last_outcome.cancelled)

    def _update_device_label(self, *args: Any) -> None:
        from ..core.device import describe_device

        try:
            text = f"in use: {describe_device(self.state.device)}"
            style = "color: #555555;"
        except ValueError as exc:
            text, style = str(exc), f"color: {_ERROR};"
        self.ui.label_device.setText(text)
        self.ui.label_device.setToolTip(text)
        self.ui.label_device.setStyleSheet(style)

    def _browse_checkpoint(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "SS-3D-Clump checkpoint", self.state.checkpoint_path or self.state.out_dir,
            "PyTorch checkpoints (*.pt);;All files (*)")
        if path:
            self.state.checkpoint_path = path

    def _browse_out_dir(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Save models in", self.state.out_dir)
        if path:
            self.state.out_dir = path

    # -- seeds ---------------------------------------------------------------------------
    def _subset_mask(self, group: Any, catalog: Data) -> np.ndarray:
        """Catalogue rows selected by a subset group.

        As glue applies it to the catalogue (a region drawn on the cube selects the
        candidates whose peak lies inside, through the catalogue's links); where the
        catalogue cannot evaluate it, the candidates the region touches in the cube.
        """
        subset = next((s for s in group.subsets if s.data is catalog), None)
        if subset is not None:
            try:
                return np.asarray(subset.to_mask(), dtype=bool)
            except IncompatibleAttribute:
                pass
        cube = cube_data_for(catalog)
        if cube is not None:
            try:
                ids = candidates_in_region(cube, group.subset_state)
            except IncompatibleAttribute:
                ids = None
            if ids is not None:
                return np.isin(np.asarray(catalog[KEY]), ids)
        raise ValueError(f"the subset {group.label!r} cannot be applied to the catalogue "
                         f"{catalog.label!r} or its cube")

    def compute_plan(self) -> SeedPlan | None:
        """Seeds, pool and held-out set from the current choices (``None``: no catalogue)."""
        cat = self.state.catalog_data
        if cat is None:
            return None
        n = cat.size
        labels = None
        if self.state.use_labels and LABEL in {c.label for c in cat.main_components}:
            labels = np.asarray(cat[LABEL])
        masks = {}
        for name in ("clump_subset", "not_clump_subset", "pool_subset"):
            group = getattr(self.state, name)
            masks[name] = None if group is None else self._subset_mask(group, cat)
        plan = plan_seeds(n, labels, masks["clump_subset"], masks["not_clump_subset"],
                          masks["pool_subset"], float(self.state.holdout_percent) / 100.0,
                          int(self.state.seed))
        if not self.state.use_labels and masks["clump_subset"] is None \
                and masks["not_clump_subset"] is None:
            plan.errors.insert(0, "Choose where the seeds come from: the manual labels "
                                  "and/or the seed subsets.")
        return plan

    def refresh_counts(self) -> None:
        """Recompute and show the seed counts for the current choices."""
        try:
            plan = self.compute_plan()
        except ValueError as exc:
            self._plan = None
            self.ui.label_counts.setText(f"<span style='color:{_ERROR}'>✖ {_html(str(exc))}"
                                         "</span>")
            return
        self._plan = plan
        if plan is None:
            self.ui.label_counts.setText(
                f"<span style='color:{_ERROR}'>No candidate catalogue in this session: "
                "detect candidates first (SS-3D-Clump: detect clump candidates…).</span>")
        elif self.state.mode == "verify":
            self.ui.label_counts.setText(f"Verify only: the model is applied to all "
                                         f"{plan.n_total} candidates; no seeds needed.")
        else:
            self.ui.label_counts.setText(_plan_html(plan))
        self._preview_plots()

    def _preview_plots(self, *args: Any) -> None:
        # Fix the plot axes for the run the settings describe while the user edits them,
        # so pressing Run needs no full redraw.  A finished run's plots stay.
        plan = self._plan
        if self.is_running or self.plots.records or plan is None:
            return
        self.plots.start(int(self.state.epochs), plan.n_pool, plan.heldout is not None,
                         draw=False)

    # -- running -------------------------------------------------------------------------
    def make_job(self) -> TrainJob:
        """Copy the cube, mask, seeds and settings into a :class:`TrainJob`.

        Raises
        ------
        ValueError
            With a message for the user (no catalogue, no seeds of a class, ...).
        """
        cat = self.state.catalog_data
        if cat is None:
            raise ValueError("No candidate catalogue is chosen: detect candidates first "
                             "(SS-3D-Clump: detect clump candidates…).")
        cube_data = cube_data_for(cat)
        if cube_data is None:
            raise ValueError(f"The catalogue {cat.label!r} is not joined to a cube on "
                             "clump_id; make it with 'detect clump candidates'.")
        train = self.state.mode == "train"
        plan = self.compute_plan()
        assert plan is not None
        if train and not plan.ok:
            raise ValueError("\n\n".join(plan.errors))
        init: str | Path = str(self.state.init)
        if init == "checkpoint":
            path = Path(str(self.state.checkpoint_path)).expanduser()
            if not str(self.state.checkpoint_path) or not path.is_file():
                raise ValueError(f"Choose an existing checkpoint file (got "
                                 f"{str(self.state.checkpoint_path)!r}).")
            init = path
        elif init == "default" and not DEFAULT_CHECKPOINT.is_file():
            raise ValueError("The shipped default model is not installed "
                             f"({DEFAULT_CHECKPOINT}); start from scratch or from a "
                             "checkpoint file.")
        if not train and init == "scratch":
            raise ValueError("Verify only needs a trained model: choose the shipped "
                             "default model or a checkpoint file.")
        from ..core.device import resolve_device

        resolve_device(self.state.device)  # a missing GPU is reported before starting
        config = self.state.config()
        cube = ppv_cube_from_data(cube_data)
        mask = np.asarray(cube_data[KEY])
        ids = np.asarray(cat[KEY], dtype=np.int64)
        table = Table({KEY: ids})
        rms = cat.meta.get("ssclump_rms")
        if isinstance(rms, (int, float)) and np.isfinite(rms) and rms > 0:
            table.meta["rms"] = float(rms)
        out_dir = None
        if train:
            base = Path(str(self.state.out_dir or default_output_dir(cat, self.session)))
            out_dir = new_run_dir(base.expanduser())
        seeds_from = (["manual labels"] if self.state.use_labels else []) + [
            f"subset {g.label!r} as {name}" for g, name in
            ((self.state.clump_subset, "clump"), (self.state.not_clump_subset, "not clump"))
            if g is not None]
        meta = {"catalogue": str(cat.label), "seeds_from": seeds_from,
                "pool": pool_label(self.state.pool_subset)}
        return TrainJob(data=cube.data, labels_mask=mask, catalog=table, codes=plan.codes,
                        config=config, init=init, train=train,
                        threshold=(float(self.state.threshold)
                                   if self.state.threshold_rule == "fixed"
                                   else str(self.state.threshold_rule)),
                        uncertain_band=float(self.state.uncertain_band),
                        pool=plan.pool if train else None,
                        heldout=plan.heldout if train else None,
                        out_dir=out_dir, meta=meta)

    def run(self) -> bool:
        """Start training / verification on the worker thread.

        Returns
        -------
        bool
            False when it could not start (the reason is shown).
        """
        if self.is_running:
            return False
        try:
            job = self.make_job()
        except ValueError as exc:
            title = "Cannot train" if self.state.mode == "train" else "Cannot verify"
            self.show_message("warning", title, str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - shown to the user
            from .worker import describe_exception

            self.show_message("critical", "Cannot start", *describe_exception(exc))
            return False
        self._running_catalog = self.state.catalog_data
        n_train = int(job.pool.sum()) if job.pool is not None else job.codes.size
        if job.train:
            self.plots.start(job.config.epochs, n_train, job.heldout is not None)
        self.ui.label_saved.setText("")
        self.last_message = None
        worker = Worker(run_job_in_child, job, report_kwarg="on_epoch" if job.train else None)
        worker.reported.connect(self._on_epoch)
        self._start_worker(worker)
        self._update_enabled()
        return True

    def cancel(self) -> None:
        """Ask the running worker to stop after its current batch."""
        if self.is_running and self.worker is not None:
            self._binding.cancel()

    def _on_epoch(self, record: Any) -> None:
        if isinstance(record, EpochRecord):
            self.plots.add_record(record)

    @guarded("Could not write the verdicts")
    def _on_succeeded(self, outcome: TrainOutcome) -> None:
        self.last_outcome = outcome
        v = outcome.verification
        self.last_model = v.model
        cat = self._running_catalog
        if cat is None or cat not in self.data_collection:
            raise ValueError("The catalogue was removed from the session during the run; "
                             "the verdicts were not written.")
        ids = np.asarray(v.catalog[KEY], dtype=np.int64)
        write_verdicts(self.data_collection, cat, p_clump=np.asarray(v.p_clump, float),
                       verdict=np.asarray(v.catalog[VERDICT]).astype(str), clump_id=ids)
        counts = v.counts()
        what = "Trained and verified" if outcome.job.train else "Verified"
        text = (f"{what} {ids.size} candidates in {outcome.seconds:.0f} s: "
                f"{counts['clump']} clump, {counts['rejected']} rejected, "
                f"{counts['uncertain']} uncertain (threshold {v.threshold:.2f} ± "
                f"{v.uncertain_band:.2f}; sample background rms {v.rms:.3g} K, "
                f"{v.rms_source}).")
        self.ui.label_status.setText(text)
        if "model" in outcome.paths:
            self.state.checkpoint_path = str(outcome.paths["model"])
            self.ui.label_saved.setText(
                f"Saved {_html(str(outcome.paths['model']))} (with training_log.csv and "
                "training.png)")
            self.ui.label_saved.setToolTip(str(outcome.paths["model"]))
        elif not outcome.job.train:
            self.ui.label_saved.setText(f"Model applied: {outcome.job.init}")
        self.update_uncertain()

    def _on_cancelled(self, outcome: TrainOutcome | None) -> None:
        if outcome is not None:
            self.last_outcome = outcome
            self.last_model = outcome.verification.model
            n = outcome.completed_epochs
            saved = outcome.paths.get("model")
            kept = (f"the model of epoch {n} is kept" + (f" and saved to {saved}" if saved
                                                         else "")) if n else \
                "no epoch completed, so the starting model is kept"
            text = f"Cancelled after {n} completed epoch(s): {kept}. The catalogue is unchanged."
            if saved:
                self.state.checkpoint_path = str(saved)
                self.ui.label_saved.setText(f"Model (epoch {n}, cancelled run) saved: {saved}")
        else:
            text = "Cancelled before any result; the catalogue is unchanged."
        self.ui.label_status.setText(text)

    def _on_failed(self, message: str, details: str) -> None:
        title = "Training failed" if self.state.mode == "train" else "Verification failed"
        self.show_message("critical", title, message, details)

    def _on_done(self) -> None:
        self._running_catalog = None
        self._update_enabled()
        if self._close_requested:
            self._close_requested = False
            self.close()

    # -- active learning -----------------------------------------------------------------
    def _set_active_learning_enabled(self, enabled: bool) -> None:
        self.ui.button_open_viewer.setEnabled(enabled)
        self.ui.table_uncertain.setEnabled(enabled)

    def _on_n_uncertain(self, *args: Any) -> None:
        if self.last_outcome is not None and not self.last_outcome.cancelled:
            self.update_uncertain()

    def update_uncertain(self) -> None:
        """List the unlabelled candidates nearest the threshold (after a run)."""
        outcome = self.last_outcome
        cat = self.state.catalog_data
        if outcome is None or outcome.cancelled or cat is None:
            return
        v = outcome.verification
        ids = np.asarray(v.catalog[KEY], dtype=np.int64)
        labels = self._labels_for(cat, ids)
        # Seeds of the run (subsets included) and held-out candidates are labelled too.
        known = (labels != LABEL_NONE) | (np.asarray(outcome.job.codes) != LABEL_NONE)
        if outcome.job.heldout is not None:
            known[np.asarray(outcome.job.heldout[0])] = True
        rows = uncertain_rows(v.p_clump, v.threshold, known, int(self.state.n_uncertain))
        self.uncertain_ids = ids[rows]
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
        self._set_active_learning_enabled(rows.size > 0)

    def _labels_for(self, cat: Data, ids: np.ndarray) -> np.ndarray:
        out = np.full(ids.size, LABEL_NONE, dtype=np.int64)
        if LABEL not in {c.label for c in cat.main_components}:
            return out
        keys = np.asarray(cat[KEY], dtype=np.int64)
        values = np.asarray(cat[LABEL], dtype=np.int64)
        pos = {int(k): i for i, k in enumerate(keys)}
        for i, cid in enumerate(ids.tolist()):
            j = pos.get(cid)
            if j is not None:
                out[i] = values[j]
        return out

    def _refresh_uncertain_labels(self) -> None:
        cat = self.state.catalog_data
        if cat is None or self.uncertain_ids.size == 0:
            return
        if self.uncertain_ids.size != self.ui.table_uncertain.rowCount():
            return
        labels = self._labels_for(cat, self.uncertain_ids)
        for i, code in enumerate(labels.tolist()):
            item = self.ui.table_uncertain.item(i, 3)
            if item is not None:
                item.setText(LABEL_NAMES.get(int(code), ""))
        done = int(np.sum(labels != LABEL_NONE))
        self.ui.button_retrain.setText(f"Retrain with new labels ({done} new)" if done
                                       else "Retrain with new labels")

    def _viewer_for(self, cat: Data, create: bool) -> Any:
        from .viewer import VerificationViewer

        app = getattr(self.session, "application", None)
        if app is None:
            raise ValueError("The verification viewer needs the glue application window.")
        for viewer in _all_viewers(app):
            if isinstance(viewer, VerificationViewer) and viewer.state.catalog_data is cat:
                return viewer
        if not create:
            return None
        return app.new_data_viewer(VerificationViewer, data=cat)

    @guarded("Could not open the verification viewer")
    def open_uncertain_in_viewer(self, ids: Sequence[int] | None = None) -> Any:
        """Open (or reuse) the verification viewer and navigate it through ``ids``.

        The unlabelled candidates among ``ids`` are given to the viewer's
        :meth:`~.viewer.VerificationViewer.set_navigation_ids`, in order: it shows the
        first one, and its keys (j / k, arrows, Home / End) and its move after a label
        (if its "advance after label" option is on, the default) go through that list
        only.  If every one is labelled already, the whole list is given for review.

        Parameters
        ----------
        ids : sequence of int, optional
            Candidate ids in the order to visit; default the listed uncertain ones.

        Returns
        -------
        VerificationViewer
        """
        cat = self.state.catalog_data
        ids = self.uncertain_ids if ids is None else np.asarray(ids, dtype=np.int64)
        if cat is None or len(ids) == 0:
            raise ValueError("No uncertain candidate to show: run a training first.")
        todo = ids[self._labels_for(cat, ids) == LABEL_NONE]
        viewer = self._viewer_for(cat, create=True)
        viewer.set_navigation_ids(todo if todo.size else ids)
        self._queue = todo
        if todo.size == 0:
            self._say_all_labelled()
        return viewer

    def _say_all_labelled(self) -> None:
        self.ui.label_active.setText("Every listed candidate is labelled: retrain to use "
                                     "the new labels.")

    def _follow_labels(self) -> None:
        """Say so once every candidate given to the viewer has a label."""
        cat = self.state.catalog_data
        if cat is None or self._queue.size == 0:
            return
        if np.all(self._labels_for(cat, self._queue) != LABEL_NONE):
            self._queue = np.empty(0, dtype=np.int64)
            self._say_all_labelled()

    def _show_row_in_viewer(self, row: int, column: int) -> None:
        if 0 <= row < self.uncertain_ids.size:
            viewer = self.open_uncertain_in_viewer()
            if viewer is not None:
                viewer.state.current_id = int(self.uncertain_ids[row])

    def retrain(self) -> bool:
        """Run again with the same settings, seeding from the labels given since."""
        self.state.use_labels = True
        self.state.mode = "train"
        self.refresh_counts()
        return self.run()

    def showEvent(self, event: Any) -> None:
        if not self._subscribed:  # closed earlier, shown again from the menu
            self.register_to_hub(self.data_collection.hub)
            self._schedule_refresh()
        # The word-wrapped labels of the right column make it height-for-width
        # dependent, and the box layout then gives the plots less than their minimum:
        # pin it once the style is applied (sizes are only final when shown).
        group = self.ui.group_progress
        group.setMinimumHeight(group.layout().minimumSize().height()
                               + group.contentsMargins().top())
        super().showEvent(event)

    # -- closing -------------------------------------------------------------------------


def _all_viewers(app: Any) -> list[Any]:
    viewers = getattr(app, "viewers", ())
    out: list[Any] = []
    for tab in viewers:
        out.extend(tab if isinstance(tab, (list, tuple)) else [tab])
    return out


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "<br>"))
