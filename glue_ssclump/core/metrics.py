"""Evaluation metrics for clump verification (binary; class 1 = clump is positive).

The paper (Luo et al. 2024, Sect. 4 and Tables 2-6) reports precision P, recall R, F1,
accuracy, the ROC curve with its AUC, and normalised mutual information (NMI) between
pseudo-labels and test labels.  Conventions here:

* predictions from probabilities: clump when ``p >= threshold``, the same rule as the
  thresholds of :func:`roc_curve`;
* a ratio whose denominator is zero (no predicted positives for P, no true positives
  for R, P + R = 0 for F1) is 0.0, as scikit-learn's ``zero_division=0``, without a
  warning;
* AUC needs both classes in ``y_true``; with one class it is NaN (and
  :func:`roc_curve` / :func:`roc_elbow` raise ValueError).
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as _skm

__all__ = [
    "confusion",
    "precision",
    "recall",
    "f1",
    "accuracy",
    "nmi",
    "roc_curve",
    "auc",
    "roc_auc",
    "roc_elbow",
    "binary_report",
]


def _binary(y: np.ndarray | list, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(f"{name} must hold 0 (not clump) / 1 (clump) only; found {bad.tolist()}")
    return arr.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = _binary(y_true, "y_true")
    p = _binary(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    return t, p


def confusion(y_true, y_pred) -> dict[str, int]:
    """Counts ``{"tp", "fp", "tn", "fn"}`` for binary labels (1 = clump)."""
    t, p = _pair(y_true, y_pred)
    return {
        "tp": int(np.sum((t == 1) & (p == 1))),
        "fp": int(np.sum((t == 0) & (p == 1))),
        "tn": int(np.sum((t == 0) & (p == 0))),
        "fn": int(np.sum((t == 1) & (p == 0))),
    }


def _ratio(num: int, den: int) -> float:
    return float(num) / den if den else 0.0


def precision(y_true, y_pred) -> float:
    """TP / (TP + FP); 0.0 when nothing is predicted positive."""
    c = confusion(y_true, y_pred)
    return _ratio(c["tp"], c["tp"] + c["fp"])


def recall(y_true, y_pred) -> float:
    """TP / (TP + FN); 0.0 when there are no true positives in ``y_true``."""
    c = confusion(y_true, y_pred)
    return _ratio(c["tp"], c["tp"] + c["fn"])


def f1(y_true, y_pred) -> float:
    """Harmonic mean 2PR / (P + R) = 2TP / (2TP + FP + FN); 0.0 when P + R = 0."""
    c = confusion(y_true, y_pred)
    return _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions; ValueError for empty input."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(t == p))


def nmi(labels_a, labels_b) -> float:
    """Normalised mutual information (scikit-learn, arithmetic normalisation).

    Symmetric and invariant to renaming clusters; 1.0 for identical partitions.
    Used between successive epochs' pseudo-labels and against test labels.
    """
    a = np.asarray(labels_a).ravel()
    b = np.asarray(labels_b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"label arrays differ in length: {a.size} vs {b.size}")
    return float(_skm.normalized_mutual_info_score(a, b))


def _scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    t = _binary(y_true, "y_true")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.shape != t.shape:
        raise ValueError(f"y_true and scores differ in length: {t.size} vs {s.size}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return t, s


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: ``(fpr, tpr, thresholds)``, thresholds decreasing.

    A sample is called positive when ``score >= threshold``.  The first threshold is
    ``inf`` (nothing positive, the point (0, 0)).

    Raises
    ------
    ValueError
        If ``y_true`` does not hold both classes.
    """
    t, s = _scores(y_true, scores)
    if np.unique(t).size < 2:
        raise ValueError("the ROC curve needs both clumps (1) and non-clumps (0) in y_true")
    fpr, tpr, thr = _skm.roc_curve(t, s, drop_intermediate=False)
    return fpr, tpr, thr


def auc(y_true, scores) -> float:
    """Area under the ROC curve (NaN when ``y_true`` holds a single class).

    Note: takes labels and scores, unlike ``sklearn.metrics.auc(x, y)``.
    """
    t, s = _scores(y_true, scores)
    if np.unique(t).size < 2:
        return float("nan")
    return float(_skm.roc_auc_score(t, s))


roc_auc = auc


def roc_elbow(y_true, scores) -> float:
    """Operating threshold at the 'elbow' of the ROC curve.

    Defined as the threshold maximising Youden's J = TPR - FPR (the point furthest above
    the chance diagonal).  Ties go to the point nearest (FPR 0, TPR 1), then to the
    highest threshold.  Only thresholds that are observed scores are considered.  The
    paper's Fig. 12 puts this elbow at P = 0.88 for its final model.

    Returns
    -------
    float
        Call a candidate a clump when its probability is ``>=`` this value.
    """
    fpr, tpr, thr = roc_curve(y_true, scores)
    finite = np.isfinite(thr)
    fpr, tpr, thr = fpr[finite], tpr[finite], thr[finite]
    j = tpr - fpr
    dist = np.hypot(fpr, 1.0 - tpr)
    # lexsort: last key is primary -> max J, then min distance, then max threshold
    order = np.lexsort((-thr, dist, -j))
    return float(thr[order[0]])


def binary_report(y_true, p, threshold: float = 0.5) -> dict[str, float]:
    """P, R, F1, accuracy and ROC AUC of clump probabilities against true labels.

    Parameters
    ----------
    y_true : array_like
        0 / 1 (1 = clump).
    p : array_like
        Probability of clump per sample.
    threshold : float
        Clump when ``p >= threshold``.

    Returns
    -------
    dict
        ``{"P", "R", "F1", "Acc", "AUC"}`` as floats (AUC NaN with a single class).
    """
    t, s = _scores(y_true, p)
    pred = (s >= threshold).astype(np.int64)
    return {
        "P": precision(t, pred),
        "R": recall(t, pred),
        "F1": f1(t, pred),
        "Acc": accuracy(t, pred),
        "AUC": auc(t, s),
    }
