"""PNG report of an SS-3D-Clump training run.

:func:`plot_training` draws, from a :class:`~glue_ssclump.core.training.EpochRecord`
history: the training loss; the stability of the pseudo-labels (NMI with the previous
clustering and the number of reassigned candidates); held-out precision / recall / F1 /
accuracy / AUC when measured; and a grid of per-epoch histograms of p(clump) for all
candidates and for held-out clumps / non-clumps, in the manner of the paper's Fig. D.1.

Only :class:`matplotlib.figure.Figure` with the Agg canvas is used (no pyplot), so
this is safe from worker threads and leaves any GUI backend alone.  At most 16
histogram panels are drawn (evenly spread epochs, always the first and the last).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from .training import EpochRecord

__all__ = ["plot_training"]

_MAX_PANELS = 16
_SCORES = (("precision", "P", "tab:blue"), ("recall", "R", "tab:orange"),
           ("f1", "F1", "tab:green"), ("accuracy", "Acc", "tab:purple"),
           ("auc", "AUC", "tab:brown"))


def _pick_panels(records: Sequence[EpochRecord], limit: int) -> list[EpochRecord]:
    """At most ``limit`` records, evenly spread, always the first and the last."""
    if len(records) <= limit:
        return list(records)
    pick = np.unique(np.round(np.linspace(0, len(records) - 1, limit)).astype(int))
    return [records[i] for i in pick]


def _fractions(counts: np.ndarray | None) -> np.ndarray | None:
    if counts is None:
        return None
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else None


def plot_training(history: Sequence[EpochRecord], path: str | Path,
                  initial: EpochRecord | None = None, title: str | None = None,
                  dpi: int = 110) -> Path:
    """Write a PNG summary of a training run.

    Parameters
    ----------
    history : sequence of EpochRecord
        Completed epochs (``TrainResult.history``); may be empty when ``initial`` is
        given.
    path : str or Path
        Output PNG file (parent folders are created).
    initial : EpochRecord, optional
        The starting model (``TrainResult.initial``): added as epoch 0 to the score
        curve and the histogram grid.
    title : str, optional
        Figure title.
    dpi : int
        Resolution.

    Returns
    -------
    Path
        ``path``.
    """
    records = ([initial] if initial is not None else []) + list(history)
    if not records:
        raise ValueError("nothing to plot: the history is empty")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    trained = [r for r in records if r.epoch > 0]
    panels = _pick_panels(records, _MAX_PANELS)
    ncols = 4
    nrows = math.ceil(len(panels) / ncols)

    # Fixed layout (inches): constrained layout costs seconds for 20 axes.
    top_h, row_h, legend_h = 3.4, 2.0, 0.45
    height = top_h + legend_h + row_h * nrows + 0.4 * bool(title)
    fig = Figure(figsize=(13, height), dpi=dpi)
    FigureCanvasAgg(fig)
    top_edge = 1.0 - (0.4 * bool(title) + 0.35) / height
    top_bottom = 1.0 - (0.4 * bool(title) + top_h - 0.45) / height
    gs_top = fig.add_gridspec(1, 3, left=0.06, right=0.95, wspace=0.42,
                              top=top_edge, bottom=top_bottom)
    ax_loss, ax_nmi, ax_score = (fig.add_subplot(gs_top[0, i]) for i in range(3))
    hist_top = 1.0 - (0.4 * bool(title) + top_h + legend_h) / height
    gs_hist = fig.add_gridspec(nrows, ncols, left=0.06, right=0.95, wspace=0.08,
                               hspace=0.45, top=hist_top, bottom=0.55 / height)

    # Training loss.
    epochs = np.array([r.epoch for r in trained])
    if trained:
        ax_loss.plot(epochs, [r.loss for r in trained], "o-", color="k", ms=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mean training loss")
    ax_loss.set_title("loss (class-balanced CE)")

    # Pseudo-label stability.
    if trained:
        ax_nmi.plot(epochs, [r.nmi_prev for r in trained], "o-", color="tab:blue", ms=3)
        ax_re = ax_nmi.twinx()
        ax_re.plot(epochs, [r.n_reassigned for r in trained], "s--", color="tab:red", ms=3)
        ax_re.set_ylim(bottom=0, top=max(1, max(r.n_reassigned for r in trained)) * 1.05)
        ax_re.set_ylabel("reassigned candidates", color="tab:red")
        ax_re.tick_params(axis="y", colors="tab:red")
    ax_nmi.set_ylim(-0.02, 1.02)
    ax_nmi.set_xlabel("epoch")
    ax_nmi.set_ylabel("NMI with previous clustering", color="tab:blue")
    ax_nmi.tick_params(axis="y", colors="tab:blue")
    ax_nmi.set_title("pseudo-label stability")

    # Held-out scores, or the clustering sizes when there is no held-out set.
    all_epochs = np.array([r.epoch for r in records])
    has_scores = any(np.isfinite(r.f1) for r in records)
    if has_scores:
        for name, short, color in _SCORES:
            values = np.array([getattr(r, name) for r in records], dtype=float)
            if np.isfinite(values).any():
                ax_score.plot(all_epochs, values, "o-", ms=3, color=color, label=short)
        ax_score.set_ylim(-0.02, 1.02)
        ax_score.set_ylabel("held-out score (p >= 0.5)")
        ax_score.set_title("held-out scores")
        ax_score.legend(loc="lower right", fontsize="small", ncols=3)
    else:
        for cls, color in ((1, "tab:red"), (0, "tab:blue")):
            name = "clump" if cls else "not clump"
            ax_score.plot(all_epochs, [r.cluster_sizes[cls] for r in records], "o-", ms=3,
                          color=color, label=f"cluster '{name}'")
            if trained:
                ax_score.plot(epochs, [r.selected_sizes[cls] for r in trained], "s--",
                              ms=3, color=color, label=f"selected '{name}'")
        ax_score.set_ylabel("candidates")
        ax_score.set_title("pseudo-label counts (no held-out set)")
        top = max(max(r.cluster_sizes) for r in records)
        ax_score.set_ylim(0, 1.6 * top)  # room for the legend above the curves
        ax_score.legend(loc="upper center", fontsize="small", ncols=2, framealpha=0.8)
    ax_score.set_xlabel("epoch")
    for ax in (ax_loss, ax_nmi, ax_score):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlim(all_epochs.min() - 0.5, all_epochs.max() + 0.5)

    # Probability histograms, one panel per (sampled) epoch.
    axes = np.empty(nrows * ncols, dtype=object)
    for i in range(nrows * ncols):
        axes[i] = fig.add_subplot(gs_hist[i // ncols, i % ncols],
                                  sharex=axes[0] if i else None,
                                  sharey=axes[0] if i else None)
    for ax, rec in zip(axes, panels, strict=False):
        edges = np.asarray(rec.hist_edges, dtype=float)
        centres = 0.5 * (edges[:-1] + edges[1:])
        width = np.diff(edges)
        frac = _fractions(rec.hist_all)
        if frac is not None:
            ax.bar(centres, frac, width=width, color="0.75", label="all candidates")
        for counts, color, label in ((rec.hist_pos, "tab:red", "held-out clumps"),
                                     (rec.hist_neg, "tab:blue", "held-out non-clumps")):
            f = _fractions(counts)
            if f is not None:
                ax.step(edges, np.append(f, f[-1]), where="post", color=color, lw=1.2,
                        label=label)
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(0, 1)
        ax.set_xticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
        ax.set_xticks([0.25, 0.75], minor=True)
        ax.set_title("start" if rec.epoch == 0 else f"epoch {rec.epoch}", fontsize="small")
    for i, ax in enumerate(axes):
        if i >= len(panels):
            ax.set_visible(False)
        if i < len(panels) - ncols:
            ax.tick_params(labelbottom=False)
        else:
            ax.set_xlabel("p(clump)")
        if i % ncols:
            ax.tick_params(labelleft=False)
        else:
            ax.set_ylabel("fraction")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncols=3, fontsize="small",
                   bbox_to_anchor=(0.5, hist_top + 0.18 / height), frameon=False)
    if title:
        fig.suptitle(title, y=1.0 - 0.12 / height, va="top")
    fig.savefig(path, dpi=dpi)
    return path
