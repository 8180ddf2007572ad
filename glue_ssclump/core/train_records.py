"""What a training run reports: one :class:`EpochRecord` per epoch, the :class:`TrainResult`.

An epoch's record holds its loss, the stability of the pseudo-labels, the held-out
scores and the probability histograms (the paper's Fig. D.1); the helpers here compute
those fields from the epoch's probabilities and write the history as
``training_log.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from astropy.table import Table

from .metrics import binary_report
from .train_config import TrainConfig

__all__ = [
    "HIST_BINS",
    "LOG_COLUMNS",
    "EpochRecord",
    "TrainResult",
    "history_to_table",
    "write_history_csv",
]

#: Number of equal bins over [0, 1] of the logged probability histograms.
HIST_BINS = 20

#: Columns of ``training_log.csv`` (:func:`history_to_table`), in order.
LOG_COLUMNS = ("epoch", "loss", "n_selected", "nmi_prev", "n_reassigned", "precision",
               "recall", "f1", "accuracy", "auc", "seconds")

# EpochRecord field <- metrics.binary_report key
_REPORT_KEYS = {"precision": "P", "recall": "R", "f1": "F1", "accuracy": "Acc", "auc": "AUC"}


def _nan() -> float:
    return float("nan")


@dataclass
class EpochRecord:
    """What one epoch did; ``epoch == 0`` describes the starting model (no training).

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    loss : float
        Mean training loss over the epoch's batches (weighted by batch size).
    n_selected : int
        Samples trained on (nearest fraction of each cluster plus the seeds).
    nmi_prev : float
        NMI between the pseudo-labels trained on and those of the trained network.
    n_reassigned : int
        Candidates whose pseudo-label changed over the epoch.
    cluster_sizes : tuple of int
        Pseudo-label counts (class 0, class 1) the epoch trained from.
    selected_sizes : tuple of int
        Selected counts (class 0, class 1).
    seconds : float
        Wall time of the epoch.
    precision, recall, f1, accuracy, auc : float
        Held-out scores of the classifier at threshold 0.5 (NaN without a held-out set).
    hist_edges : ndarray
        ``HIST_BINS + 1`` bin edges over [0, 1] of the probability histograms.
    hist_all : ndarray
        Counts of p(clump) over all candidates after the epoch.
    hist_pos, hist_neg : ndarray or None
        The same for the held-out clumps / non-clumps.
    """

    epoch: int
    loss: float
    n_selected: int
    nmi_prev: float
    n_reassigned: int
    cluster_sizes: tuple[int, int]
    selected_sizes: tuple[int, int]
    seconds: float
    precision: float = field(default_factory=_nan)
    recall: float = field(default_factory=_nan)
    f1: float = field(default_factory=_nan)
    accuracy: float = field(default_factory=_nan)
    auc: float = field(default_factory=_nan)
    hist_edges: np.ndarray = field(
        default_factory=lambda: np.linspace(0.0, 1.0, HIST_BINS + 1))
    hist_all: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))
    hist_pos: np.ndarray | None = None
    hist_neg: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (arrays as lists, NaN kept as float NaN)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """Rebuild from :meth:`to_dict` output."""
        kw = dict(data)
        for name in ("cluster_sizes", "selected_sizes"):
            kw[name] = tuple(int(v) for v in kw[name])
        kw["hist_edges"] = np.asarray(kw["hist_edges"], dtype=float)
        kw["hist_all"] = np.asarray(kw["hist_all"], dtype=np.int64)
        for name in ("hist_pos", "hist_neg"):
            if kw.get(name) is not None:
                kw[name] = np.asarray(kw[name], dtype=np.int64)
        return cls(**kw)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model : torch.nn.Module
        The network after the last completed epoch (the same object that was passed in
        when fine-tuning).
    history : list of EpochRecord
        One record per completed epoch.
    config : TrainConfig
    completed_epochs : int
    cancelled : bool
        True when the caller cancelled; ``model`` then holds the last completed epoch.
    initial : EpochRecord or None
        Epoch 0: the starting model's clustering, held-out scores and histograms.
    pseudo_labels : ndarray or None
        Constrained-KMeans labels of the returned model's features (1 = clump); None
        when cancelled before the starting model's features were computed.
    """

    model: torch.nn.Module
    history: list[EpochRecord]
    config: TrainConfig
    completed_epochs: int
    cancelled: bool
    initial: EpochRecord | None = None
    pseudo_labels: np.ndarray | None = None


def _histograms(probs: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None,
                ) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    out: dict[str, Any] = {"hist_edges": edges,
                           "hist_all": np.histogram(probs, bins=edges)[0].astype(np.int64)}
    if held is not None:
        index, labels = held
        p = probs[index]
        out["hist_pos"] = np.histogram(p[labels == 1], bins=edges)[0].astype(np.int64)
        out["hist_neg"] = np.histogram(p[labels == 0], bins=edges)[0].astype(np.int64)
    return out


def _heldout_scores(probs: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None,
                    ) -> dict[str, float]:
    if held is None:
        return {}
    index, labels = held
    report = binary_report(labels, probs[index], threshold=0.5)
    return {name: float(report[key]) for name, key in _REPORT_KEYS.items()}


def _class_sizes(labels: np.ndarray) -> tuple[int, int]:
    return int(np.count_nonzero(labels == 0)), int(np.count_nonzero(labels == 1))



def history_to_table(history: list[EpochRecord]) -> Table:
    """One row per epoch with the :data:`LOG_COLUMNS` (NaN where not measured).

    Parameters
    ----------
    history : list of EpochRecord

    Returns
    -------
    astropy.table.Table
    """
    ints = {"epoch", "n_selected", "n_reassigned"}
    cols = {}
    for name in LOG_COLUMNS:
        values = [getattr(r, name) for r in history]
        cols[name] = np.asarray(values, dtype=np.int64 if name in ints else np.float64)
    table = Table(cols, names=LOG_COLUMNS)
    table["seconds"].unit = "s"
    return table


def write_history_csv(history: list[EpochRecord], path: str | Path) -> Path:
    """Write ``training_log.csv`` (:func:`history_to_table`) to ``path``; return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = history_to_table(history)
    table["seconds"].unit = None
    table.write(path, format="ascii.csv", overwrite=True)
    return path
