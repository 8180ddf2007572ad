"""The train dialog's live plots: loss, NMI, p(clump) histogram, held-out scores."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from qtpy import QtCore, QtWidgets

from ..core.training import HIST_BINS, EpochRecord

__all__ = ["LOSS_RANGE", "LivePlots", "freeze_height"]

#: y range of the live loss plot (log scale).
LOSS_RANGE = (0.01, 10.0)


class LivePlots(QtWidgets.QWidget):
    """Per-epoch training plots in a matplotlib canvas, redrawn by blitting.

    Four panels: mean training loss, NMI between successive pseudo-labels, the p(clump)
    histogram of the latest epoch (all candidates; held-out clumps / non-clumps as
    outlines, log scale, as in the paper's Fig. D.1) and the held-out P / R / F1 (or,
    without a held-out set, the pseudo-label counts).  A caption above them gives the
    latest epoch's numbers.

    The axes limits are fixed when a run starts (epochs and candidate counts are known
    then; the loss axis is a fixed log range), so a new epoch only redraws the data
    artists over a cached background, far cheaper on the GUI thread than a full
    matplotlib draw.  :meth:`start` skips the full draw too when the axes did not
    change.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.figure = Figure(figsize=(6.8, 4.4), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(420, 320)
        self.caption = QtWidgets.QLabel("No training yet.")
        self.caption.setTextFormat(QtCore.Qt.PlainText)
        freeze_height(self.caption, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.caption)
        layout.addWidget(self.canvas, stretch=1)
        self.records: list[EpochRecord] = []
        self.epochs = 1
        self.has_heldout = False
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
        """Add one completed epoch and redraw its artists (no full redraw).

        Parameters
        ----------
        record : EpochRecord
        """
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


def freeze_height(label: QtWidgets.QLabel, lines: int) -> None:
    """Give a label whose text changes during a run a fixed size in the layout.

    Otherwise a longer message (a wrapped line) resizes the plot canvas next to it,
    and a resized canvas needs a full matplotlib redraw on the GUI thread.

    Parameters
    ----------
    label : QLabel
    lines : int
        Lines of text the label holds.
    """
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 4)
    label.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
    label.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
