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
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from echo import CallbackProperty, SelectionCallbackProperty, delay_callback
from echo.qt import autoconnect_callbacks_to_qt
from glue.core import message as msg
from glue.core.data import Data
from glue.core.data_collection import DataCollection
from glue.core.exceptions import IncompatibleAttribute
from glue.core.hub import HubListener
from glue.core.state_objects import State
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from qtpy import QtCore, QtWidgets

from ..core.jobs import TrainJob, TrainOutcome, run_job_in_child
from ..core.labels import LABEL_NAMES, LABEL_NONE
from ..core.pipeline import DEFAULT_BAND, DEFAULT_THRESHOLD
from ..core.seeds import SeedPlan, plan_seeds, uncertain_rows
from ..core.training import DEFAULT_CHECKPOINT, HIST_BINS, EpochRecord, TrainConfig
from ..integration.factory import KEY, cube_data_for, ppv_cube_from_data
from ..integration.selection import candidates_in_region
from ..integration.writeback import LABEL, VERDICT, write_verdicts
from .worker import Worker, WorkerDialogMixin, guarded, show_message

log = logging.getLogger(__name__)

__all__ = [
    "LivePlots",
    "TrainDialog",
    "TrainState",
    "default_output_dir",
]

#: y range of the live loss plot (log scale).
LOSS_RANGE = (0.01, 10.0)
#: Delay between showing the dialog and starting the background imports (ms).
WARM_UP_DELAY_MS = 1000

_INIT_LABELS = {"default": "Shipped default model", "scratch": "From scratch (new weights)",
                "checkpoint": "Checkpoint file"}
_MODE_LABELS = {"train": "Train, then verify all candidates",
                "verify": "Verify only (apply the model, no training)"}
_DEVICE_LABELS = {"auto": "auto", "cpu": "cpu", "cuda": "cuda"}
_THRESHOLD_LABELS = {"fixed": "Fixed p(clump)",
                     "clusters": "From the clusters",
                     "elbow": "ROC elbow of the labels"}
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


# -- output folder ----------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "catalogue"


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK)


def default_output_dir(catalog_data: Data, session: Any = None) -> Path:
    """Where models of a catalogue are saved unless the user chooses a folder.

    ``<source folder>/<catalogue>_ss3dclump`` next to the file the catalogue (or its
    cube) came from when that folder is writable; else next to the saved glue session;
    else ``<temp>/glue_ssclump/<catalogue>``.  Each run writes a ``run_<time>``
    folder inside.

    Parameters
    ----------
    catalog_data : glue Data
    session : glue Session, optional

    Returns
    -------
    pathlib.Path
    """
    name = f"{_slug(catalog_data.label or 'catalogue')}_ss3dclump"
    sources = [getattr(getattr(catalog_data, "_load_log", None), "path", None)]
    cube = cube_data_for(catalog_data)
    if cube is not None:
        sources += [getattr(getattr(cube, "_load_log", None), "path", None),
                    cube.meta.get("ssclump_source")]
    app = getattr(session, "application", None)
    sources.append(getattr(app, "_last_session_name", None))
    for source in sources:
        if isinstance(source, str) and source:
            folder = Path(source).expanduser().resolve().parent / name
            if _writable(folder):
                return folder
    return Path(tempfile.gettempdir()) / "glue_ssclump" / name


def _new_run_dir(base: Path) -> Path:
    stamp = time.strftime("run_%Y%m%d_%H%M%S")
    path = base / stamp
    k = 1
    while path.exists():
        k += 1
        path = base / f"{stamp}_{k}"
    return path


# -- live plots -------------------------------------------------------------------------

class LivePlots(QtWidgets.QWidget):
    """Per-epoch training plots in a matplotlib canvas, redrawn by blitting.

    Four panels: mean training loss, NMI between successive pseudo-labels, the p(clump)
    histogram of the latest epoch (all candidates; held-out clumps / non-clumps as
    outlines, log scale, as in the paper's Fig. D.1) and the held-out P / R / F1 (or,
    without a held-out set, the pseudo-label counts).  A caption above them gives the
    latest epoch's numbers.

    The axes limits are fixed when a run starts (epochs and candidate counts are known
    then; the loss axis is a fixed log range), so a new epoch only redraws the data
    artists over a cached background: a few milliseconds on the GUI thread instead of a
    full matplotlib draw (tenths of a second).  :meth:`start` skips the full draw too
    when the axes did not change.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(6.8, 4.4), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(420, 320)
        self.caption = QtWidgets.QLabel("No training yet.")
        self.caption.setTextFormat(QtCore.Qt.PlainText)
        _freeze_height(self.caption, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.canvas, stretch=1)
        self.records: list[EpochRecord] = []
        self.epochs = 1
        self.has_heldout = False
        self.n_full_draws = 0
        self._background: Any = None
        self._drawn_key: tuple[Any, ...] | None = None
        self._key: tuple[Any, ...] | None = None

        axes = self.figure.subplots(2, 2)
        self.figure.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93,
                                    wspace=0.32, hspace=0.52)
        self.ax_loss, self.ax_nmi, self.ax_hist, self.ax_score = axes.ravel()
        a = {"animated": True}
        self.loss_line, = self.ax_loss.plot([], [], "o-", color="k", ms=3, lw=1.2, **a)
        self.nmi_line, = self.ax_nmi.plot([], [], "o-", color="tab:blue", ms=3, lw=1.2, **a)
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
        self._edges = edges
        # One filled step patch, not 20 bars: each artist costs a draw call per epoch.
        self.hist_all = self.ax_hist.stairs(np.ones(HIST_BINS), edges, fill=True,
                                            color="0.72", label="all candidates", **a)
        self.hist_pos, = self.ax_hist.step(edges, np.ones(edges.size), where="post",
                                           color="tab:red", lw=1.3, label="held-out clumps", **a)
        self.hist_neg, = self.ax_hist.step(edges, np.ones(edges.size), where="post",
                                           color="tab:blue", lw=1.3,
                                           label="held-out non-clumps", **a)
        self.score_lines = {
            name: self.ax_score.plot([], [], "o-", ms=3, lw=1.2, color=color, label=name, **a)[0]
            for name, color in (("P", "tab:blue"), ("R", "tab:orange"), ("F1", "tab:green"))}
        self.count_lines = {
            name: self.ax_score.plot([], [], "o-", ms=3, lw=1.2, color=color, label=name, **a)[0]
            for name, color in (("clump", "tab:red"), ("not clump", "tab:blue"))}
        self._animated = [self.loss_line, self.nmi_line, self.hist_all, self.hist_pos,
                          self.hist_neg, *self.score_lines.values(), *self.count_lines.values()]
        for ax in (self.ax_loss, self.ax_nmi, self.ax_score):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
            ax.set_xlabel("epoch", fontsize=8, labelpad=1)
            ax.grid(alpha=0.3)
        # A fixed log range: a rescaled axis would need a full redraw during the run (a
        # loss outside it is clipped; the caption gives the value).
        self.ax_loss.set_yscale("log")
        self.ax_loss.set_ylim(LOSS_RANGE)
        self.ax_loss.set_title("training loss (class-balanced CE)", fontsize=9)
        self.ax_nmi.set_ylim(-0.02, 1.05)
        self.ax_nmi.set_title("pseudo-label stability (NMI)", fontsize=9)
        self.ax_hist.set_yscale("log")
        self.ax_hist.set_xlim(0.0, 1.0)
        self.ax_hist.set_xlabel("p(clump)", fontsize=8, labelpad=1)
        self.ax_hist.set_ylabel("fraction", fontsize=8, labelpad=1)
        self.ax_hist.set_title("p(clump) histogram, latest epoch", fontsize=9)
        for ax in (self.ax_loss, self.ax_nmi, self.ax_hist, self.ax_score):
            ax.tick_params(labelsize=7, pad=1)
        self.canvas.mpl_connect("draw_event", self._on_draw)
        self.start(epochs=10, n_candidates=100, has_heldout=False, draw=False)

    # -- set-up (full draw when the axes change) -----------------------------------------
    def start(self, epochs: int, n_candidates: int, has_heldout: bool,
              draw: bool = True) -> None:
        """Clear the plots and fix their axes for a run.

        Parameters
        ----------
        epochs : int
            Epochs of the run (x range).
        n_candidates : int
            Candidates trained on (histogram floor and count range).
        has_heldout : bool
            P / R / F1 panel (True) or pseudo-label counts (False).
        draw : bool
            Draw now (synchronously) if the axes changed, so that the first epoch can
            be blitted; otherwise a draw is only scheduled.
        """
        self.records = []
        self.epochs = max(int(epochs), 1)
        self.has_heldout = bool(has_heldout)
        self._n = max(int(n_candidates), 1)
        self._floor = 0.5 / self._n
        self._key = (self.epochs, self._n, self.has_heldout)
        self.caption.setText(f"Training {self.epochs} epoch(s) on {self._n} candidates…"
                             if draw else "No training yet.")
        if self._key == self._drawn_key and self._background is not None:
            self._update_artists()
            self._blit()
            return
        for ax in (self.ax_loss, self.ax_nmi, self.ax_score):
            ax.set_xlim(0.5, self.epochs + 0.5)
        self.ax_hist.set_ylim(self._floor, 30.0)  # the legend sits above fraction 1
        if self.ax_hist.get_legend() is not None:
            self.ax_hist.get_legend().remove()
        if self.has_heldout:
            # Proxies: the animated artists themselves are left out of full draws.
            handles = [Patch(facecolor="0.72", label="all"),
                       Line2D([], [], color="tab:red", lw=1.3, label="held-out clumps"),
                       Line2D([], [], color="tab:blue", lw=1.3, label="held-out non-clumps")]
            self.ax_hist.legend(handles=handles, loc="upper center", fontsize=6.5,
                                frameon=False, ncol=3, handlelength=1.2, columnspacing=0.8,
                                borderaxespad=0.1, bbox_to_anchor=(0.55, 1.0))
        self.hist_pos.set_visible(self.has_heldout)
        self.hist_neg.set_visible(self.has_heldout)
        for line in self.score_lines.values():
            line.set_visible(self.has_heldout)
        for line in self.count_lines.values():
            line.set_visible(not self.has_heldout)
        if self.ax_score.get_legend() is not None:
            self.ax_score.get_legend().remove()
        if self.has_heldout:
            self.ax_score.set_ylim(-0.02, 1.05)
            self.ax_score.set_title("held-out scores (p ≥ 0.5)", fontsize=9)
            handles = [Line2D([], [], marker="o", ms=3, lw=1.2, color=line.get_color(),
                              label=name) for name, line in self.score_lines.items()]
        else:
            self.ax_score.set_ylim(0, self._n * 1.05)
            self.ax_score.set_title("pseudo-label counts (no held-out set)", fontsize=9)
            handles = [Line2D([], [], marker="o", ms=3, lw=1.2, color=line.get_color(),
                              label=name) for name, line in self.count_lines.items()]
        self.ax_score.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
        self._update_artists()
        if draw:
            self.canvas.draw()
        else:
            self.canvas.draw_idle()

    # -- per epoch (blit) ----------------------------------------------------------------
    def add_record(self, record: EpochRecord) -> None:
        """Add one completed epoch and redraw its artists (no full redraw)."""
        self.records.append(record)
        self.caption.setText(self._caption(record))
        self._update_artists()
        self._blit()

    def _caption(self, r: EpochRecord) -> str:
        text = (f"Epoch {r.epoch}/{self.epochs} · loss {r.loss:.3f} · NMI {r.nmi_prev:.2f} "
                f"({r.n_reassigned} moved)")
        if np.isfinite(r.f1):
            text += f" · P {r.precision:.2f} R {r.recall:.2f} F1 {r.f1:.2f}"
        return text

    def _update_artists(self) -> None:
        recs = self.records
        ep = [r.epoch for r in recs]
        self.loss_line.set_data(ep, [r.loss for r in recs])
        self.nmi_line.set_data(ep, [r.nmi_prev for r in recs])
        last = recs[-1] if recs else None
        counts = None if last is None else np.asarray(last.hist_all, float)
        frac = np.zeros(HIST_BINS)
        if counts is not None and counts.sum() > 0:
            frac = counts / counts.sum()
        # Empty bins sit on the floor of the log axis (zero or NaN would break the fill).
        self.hist_all.set_data(np.maximum(frac, self._floor), baseline=self._floor)
        for line, hist in ((self.hist_pos, None if last is None else last.hist_pos),
                           (self.hist_neg, None if last is None else last.hist_neg)):
            if hist is None or np.sum(hist) == 0:
                line.set_ydata(np.full(self._edges.size, np.nan))
            else:
                f = np.asarray(hist, float) / np.sum(hist)
                line.set_ydata(np.maximum(np.append(f, f[-1]), self._floor))
        for name, attr in (("P", "precision"), ("R", "recall"), ("F1", "f1")):
            self.score_lines[name].set_data(ep, [getattr(r, attr) for r in recs])
        self.count_lines["clump"].set_data(ep, [r.cluster_sizes[1] for r in recs])
        self.count_lines["not clump"].set_data(ep, [r.cluster_sizes[0] for r in recs])

    def _draw_animated(self) -> None:
        for artist in self._animated:
            if artist.get_visible():
                self.figure.draw_artist(artist)

    def _on_draw(self, event: Any) -> None:
        self.n_full_draws += 1
        self._drawn_key = self._key
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self._draw_animated()

    def _blit(self) -> None:
        if self._background is None:
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        self._draw_animated()
        self.canvas.blit(self.figure.bbox)


# -- settings ---------------------------------------------------------------------------

def _group_label(group: Any) -> str:
    return "(none)" if group is None else str(group.label)


def _pool_label(group: Any) -> str:
    return "All candidates" if group is None else str(group.label)


def _data_label(data: Any) -> str:
    return "" if data is None else str(data.label)


def is_candidate_catalog(data: Any) -> bool:
    """A 1-D dataset with ``clump_id`` that is joined to its cube."""
    return (isinstance(data, Data) and data.ndim == 1
            and KEY in {c.label for c in data.main_components}
            and cube_data_for(data) is not None)


class TrainState(State):
    """Settings of the train & verify dialog (autoconnected to ``train_dialog.ui``)."""

    catalog_data = SelectionCallbackProperty(docstring="Candidate catalogue")
    use_labels = CallbackProperty(True, docstring="Seed from the manual label column")
    clump_subset = SelectionCallbackProperty(docstring="Subset of clump seeds")
    not_clump_subset = SelectionCallbackProperty(docstring="Subset of not-clump seeds")
    pool_subset = SelectionCallbackProperty(docstring="Candidates trained on (None = all)")
    mode = SelectionCallbackProperty(default_index=0, choices=list(_MODE_LABELS))
    init = SelectionCallbackProperty(default_index=0, choices=list(_INIT_LABELS))
    checkpoint_path = CallbackProperty("", docstring="Checkpoint file (init='checkpoint')")
    epochs = CallbackProperty(TrainConfig.epochs)
    device = SelectionCallbackProperty(default_index=0, choices=list(_DEVICE_LABELS))
    lr = CallbackProperty(0.005)
    optimizer = SelectionCallbackProperty(default_index=0, choices=["sgd", "adam"])
    select_ratio = CallbackProperty(TrainConfig.select_ratio)
    batch_size = CallbackProperty(TrainConfig.batch_size)
    passes = CallbackProperty(TrainConfig.passes)
    seed = CallbackProperty(TrainConfig.seed)
    threshold_rule = SelectionCallbackProperty(default_index=0,
                                               choices=list(_THRESHOLD_LABELS))
    threshold = CallbackProperty(DEFAULT_THRESHOLD)
    uncertain_band = CallbackProperty(DEFAULT_BAND)
    holdout_percent = CallbackProperty(0)
    out_dir = CallbackProperty("", docstring="Folder of the run folders")
    n_uncertain = CallbackProperty(20, docstring="Uncertain candidates listed")

    def __init__(self) -> None:
        super().__init__()
        TrainState.catalog_data.set_display_func(self, _data_label)
        TrainState.clump_subset.set_display_func(self, _group_label)
        TrainState.not_clump_subset.set_display_func(self, _group_label)
        TrainState.pool_subset.set_display_func(self, _pool_label)
        TrainState.mode.set_display_func(self, _MODE_LABELS.get)
        TrainState.init.set_display_func(self, self._init_label)
        TrainState.device.set_display_func(self, self._device_label)
        TrainState.threshold_rule.set_display_func(self, _THRESHOLD_LABELS.get)
        self.lr = TrainConfig().lr
        if not DEFAULT_CHECKPOINT.is_file():
            self.init = "scratch"

    @staticmethod
    def _init_label(value: str) -> str:
        text = _INIT_LABELS.get(value, value)
        if value == "default" and not DEFAULT_CHECKPOINT.is_file():
            text += " (not installed)"
        return text

    @staticmethod
    def _device_label(value: str) -> str:
        if value == "cuda":
            import torch

            if not torch.cuda.is_available():
                return "cuda (not available)"
        return value

    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` of these settings."""
        return TrainConfig(epochs=int(self.epochs), passes=int(self.passes),
                           batch_size=int(self.batch_size), optimizer=str(self.optimizer),
                           lr=float(self.lr), select_ratio=float(self.select_ratio),
                           seed=int(self.seed), device=str(self.device))


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
        _freeze_height(self.ui.label_status, 2)
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
        self.warm_up = Worker(_warm_up)

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
            out_dir = _new_run_dir(base.expanduser())
        seeds_from = (["manual labels"] if self.state.use_labels else []) + [
            f"subset {g.label!r} as {name}" for g, name in
            ((self.state.clump_subset, "clump"), (self.state.not_clump_subset, "not clump"))
            if g is not None]
        meta = {"catalogue": str(cat.label), "seeds_from": seeds_from,
                "pool": _pool_label(self.state.pool_subset)}
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
        if self.warm_up.started_at is None:
            # After the first paint (a full plot draw), which it would otherwise slow down.
            QtCore.QTimer.singleShot(WARM_UP_DELAY_MS, self._start_warm_up)
        # The word-wrapped labels of the right column make it height-for-width
        # dependent, and the box layout then gives the plots less than their minimum:
        # pin it once the style is applied (sizes are only final when shown).
        group = self.ui.group_progress
        group.setMinimumHeight(group.layout().minimumSize().height()
                               + group.contentsMargins().top())
        super().showEvent(event)

    def _start_warm_up(self) -> None:
        if self.warm_up.started_at is None:
            self.warm_up.start(QtCore.QThread.LowPriority)

    # -- closing -------------------------------------------------------------------------


def _freeze_height(label: QtWidgets.QLabel, lines: int) -> None:
    """Give a label whose text changes during a run a fixed size in the layout.

    Otherwise a longer message (a wrapped line) resizes the plot canvas next to it,
    and a resized canvas needs a full matplotlib redraw on the GUI thread.
    """
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 4)
    label.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
    label.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)


def _warm_up(progress: Any = None) -> None:
    """Import and initialise what a first run needs on its worker thread.

    ``torch.optim`` pulls in ``torch._dynamo`` (seconds of imports) and the training
    report is the first PNG written by matplotlib's Agg backend (font and image
    libraries).  Importing holds the GIL for up to a few tenths of a second at a time,
    so done during a first epoch it would stall the interface; done on a thread when
    the dialog opens, it is over by the time the user has chosen the settings.
    """
    import io

    import torch
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    fig = Figure(figsize=(1, 1), dpi=50)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, "warm-up")
    fig.savefig(io.BytesIO(), format="png")


def _all_viewers(app: Any) -> list[Any]:
    viewers = getattr(app, "viewers", ())
    out: list[Any] = []
    for tab in viewers:
        out.extend(tab if isinstance(tab, (list, tuple)) else [tab])
    return out


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", "<br>"))
