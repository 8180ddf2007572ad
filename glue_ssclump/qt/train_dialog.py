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
nothing it does can hold the GIL of the process that draws the interface.  Its parts:
:mod:`.train_state` (settings), :mod:`.train_seeds`, :mod:`.train_run` (job, write-back),
:mod:`.train_text`, :mod:`.train_widgets`, :mod:`.live_plots`, :mod:`.uncertain_list`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from echo import delay_callback
from echo.qt import autoconnect_callbacks_to_qt
from glue.core import message as msg
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.hub import HubListener
from qtpy import QtCore, QtWidgets

from ..core.jobs import TrainJob, TrainOutcome, run_job_in_child
from ..core.seeds import SeedPlan
from ..core.training import EpochRecord
from ..integration.pairing import is_candidate_catalog
from ..integration.run_folder import default_output_dir
from . import train_widgets as widgets
from .live_plots import LivePlots
from .train_run import make_train_job, write_outcome
from .train_seeds import plan_for
from .train_state import TrainState
from .train_text import (
    ERROR,
    WARN,
    cancelled_text,
    counts_html,
    error_html,
    escape_html,
    saved_text,
    succeeded_text,
)
from .uncertain_list import UncertainList
from .worker import Worker, WorkerDialogMixin, guarded, show_message

log = logging.getLogger(__name__)

__all__ = ["TrainDialog"]


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
        self._plan: SeedPlan | None = None
        self._auto_out_dir = ""
        self._running_catalog: Data | None = None
        self._refresh_timer = QtCore.QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_now)

        self.plots = LivePlots(self)
        self.ui.layout_plots.addWidget(self.plots)
        widgets.arrange(self.ui)
        self.ui.button_advanced.toggled.connect(partial(widgets.show_advanced, self.ui))
        self.uncertain = UncertainList(self.ui, session)
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
        self.ui.button_browse_checkpoint.clicked.connect(
            lambda: widgets.browse_checkpoint(self, self.state))
        self.ui.button_browse_out.clicked.connect(
            lambda: widgets.browse_out_dir(self, self.state))
        self.ui.button_open_viewer.clicked.connect(lambda: self.open_uncertain_in_viewer())
        self.ui.button_retrain.clicked.connect(self.retrain)
        self.register_to_hub(data_collection.hub)

        self._on_catalog_changed()
        self._update_enabled()
        self._update_device_label()
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
        colour = {"critical": ERROR, "warning": WARN}.get(level, "#222222")
        self.ui.label_status.setText(f"<span style='color:{colour}'>{escape_html(text)}</span>")
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
            self.uncertain.follow_labels(self.state.catalog_data)
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
    def _update_enabled(self, *args: Any) -> None:
        outcome = self.last_outcome
        widgets.update_enabled(self.ui, self.state, self.is_running,
                               outcome is not None and not outcome.cancelled)

    def _update_device_label(self, *args: Any) -> None:
        widgets.show_device(self.ui, self.state.device)

    # -- seeds ---------------------------------------------------------------------------
    def compute_plan(self) -> SeedPlan | None:
        """Seeds, pool and held-out set from the current choices (``None``: no catalogue)."""
        return plan_for(self.state)

    def refresh_counts(self) -> None:
        """Recompute and show the seed counts for the current choices."""
        try:
            plan = self.compute_plan()
        except ValueError as exc:
            self._plan = None
            self.ui.label_counts.setText(error_html(str(exc)))
            return
        self._plan = plan
        self.ui.label_counts.setText(counts_html(plan, self.state.mode))
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

        See :func:`~glue_ssclump.qt.train_run.make_train_job`.

        Raises
        ------
        ValueError
            With a message for the user (no catalogue, no seeds of a class, ...).
        """
        return make_train_job(self.state, self.session)

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

    def _on_epoch(self, record: Any) -> None:
        if isinstance(record, EpochRecord):
            self.plots.add_record(record)

    @guarded("Could not write the verdicts")
    def _on_succeeded(self, outcome: TrainOutcome) -> None:
        self.last_outcome = outcome
        self.last_model = outcome.verification.model
        write_outcome(self.data_collection, self._running_catalog, outcome)
        self.ui.label_status.setText(succeeded_text(outcome))
        if "model" in outcome.paths:
            self.state.checkpoint_path = str(outcome.paths["model"])
            self.ui.label_saved.setToolTip(str(outcome.paths["model"]))
        text = saved_text(outcome)
        if text:
            self.ui.label_saved.setText(text)
        self.update_uncertain()

    def _on_cancelled(self, outcome: TrainOutcome | None) -> None:
        if outcome is not None:
            self.last_outcome = outcome
            self.last_model = outcome.verification.model
            saved = outcome.paths.get("model")
            if saved:
                self.state.checkpoint_path = str(saved)
                self.ui.label_saved.setText(f"Model (epoch {outcome.completed_epochs}, "
                                            f"cancelled run) saved: {saved}")
        self.ui.label_status.setText(cancelled_text(outcome))

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
    @property
    def uncertain_ids(self) -> np.ndarray:
        """The candidates listed for labelling after the last run, most uncertain first."""
        return self.uncertain.ids

    def _on_n_uncertain(self, *args: Any) -> None:
        if self.last_outcome is not None and not self.last_outcome.cancelled:
            self.update_uncertain()

    def update_uncertain(self) -> None:
        """List the unlabelled candidates nearest the threshold (after a run)."""
        outcome = self.last_outcome
        cat = self.state.catalog_data
        if outcome is None or outcome.cancelled or cat is None:
            return
        self.uncertain.show(outcome, cat, int(self.state.n_uncertain))

    @guarded("Could not open the verification viewer")
    def open_uncertain_in_viewer(self, ids: Sequence[int] | None = None) -> Any:
        """Open (or reuse) the verification viewer and navigate it through ``ids``.

        See :meth:`~glue_ssclump.qt.uncertain_list.UncertainList.open_in_viewer`.

        Parameters
        ----------
        ids : sequence of int, optional
            Candidate ids in the order to visit; default the listed uncertain ones.

        Returns
        -------
        VerificationViewer
        """
        return self.uncertain.open_in_viewer(self.state.catalog_data, ids)

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
        widgets.pin_progress_height(self.ui)
        super().showEvent(event)
