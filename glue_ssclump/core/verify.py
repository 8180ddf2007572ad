"""Verify clump candidates with a trained SS-3D-Clump model.

:func:`predict` gives p(clump) per sample, :func:`verdicts` turns probabilities into
'clump' / 'rejected' / 'uncertain', and :func:`verify_catalog` writes both into a
candidate catalogue.  The paper suggests the ROC elbow as operating threshold
(:func:`elbow_threshold`; P = 0.88 for its final model).  :func:`cluster_threshold`
needs no labels beyond the seeds: it calls as many candidates clumps as the final
Constrained-KMeans clustering put in the clump cluster.
"""

from __future__ import annotations

import numpy as np
import torch
from astropy import units as u
from astropy.table import Column, Table

from .labels import VERDICTS
from .metrics import roc_elbow
from .model import infer
from .progress import Progress
from .samples import SampleSource

__all__ = ["VERDICTS", "cluster_threshold", "elbow_threshold", "predict", "seed_f1_threshold",
           "verdicts", "verify_catalog"]

#: The verdict strings, in the order clump, rejected, uncertain.


def predict(model: torch.nn.Module, samples: SampleSource, device: str = "auto",
            batch_size: int = 256, progress: Progress | None = None) -> np.ndarray:
    """p(clump) of every sample.

    Parameters
    ----------
    model : torch.nn.Module
        A trained SSClumpNet.
    samples : SampleSource
        Candidates, read batch by batch.
    device : str
        'auto', 'cpu' or 'cuda'.
    batch_size : int
        Inference batch.
    progress : Progress, optional
        Updated per batch; cancelling raises :class:`~glue_ssclump.core.progress.Cancelled`.

    Returns
    -------
    ndarray
        ``(len(samples),)`` float32 in [0, 1].
    """
    probs, _ = infer(model, samples, batch_size=batch_size, device=device,
                     progress=progress)
    return np.asarray(probs, dtype=np.float32).reshape(len(samples))


def _check_threshold(threshold: float, uncertain_band: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], not {threshold!r}")
    if not uncertain_band >= 0.0:
        raise ValueError(f"uncertain_band must be >= 0, not {uncertain_band!r}")


def verdicts(p: np.ndarray, threshold: float = 0.5,
             uncertain_band: float = 0.1) -> np.ndarray:
    """Verdict per candidate from its p(clump).

    Parameters
    ----------
    p : array_like
        Probabilities of being a clump.
    threshold : float
        p >= threshold is a clump.
    uncertain_band : float
        Candidates with ``|p - threshold| < uncertain_band`` are 'uncertain' (0 turns
        the band off).  A NaN probability is 'uncertain' too.

    Returns
    -------
    ndarray of str
        'clump', 'rejected' or 'uncertain', same shape as ``p``.
    """
    _check_threshold(threshold, uncertain_band)
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, "uncertain", dtype="<U9")
    with np.errstate(invalid="ignore"):
        sure = np.abs(p - threshold) >= uncertain_band
        out[sure & (p >= threshold)] = "clump"
        out[sure & (p < threshold)] = "rejected"
    return out


def _labelled(p: np.ndarray, labels: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """``p`` (float64) and ``labels`` (int64) of the labelled candidates, checked."""
    labels = np.asarray(labels).astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    if labels.shape != p.shape:
        raise ValueError(f"p and labels differ in shape: {p.shape} vs {labels.shape}")
    if np.unique(labels).size < 2:
        raise ValueError(f"{rule} needs labelled candidates of both classes")
    return p, labels


def elbow_threshold(p: np.ndarray, labels: np.ndarray) -> float:
    """The ROC-elbow threshold of ``p`` against true ``labels`` (1 = clump).

    Parameters
    ----------
    p : array_like
        Probabilities of the labelled candidates.
    labels : array_like
        Their true classes, 0 or 1 (both needed).

    Returns
    -------
    float
        A threshold in [0, 1] (see :func:`glue_ssclump.core.metrics.roc_elbow`).
    """
    p, labels = _labelled(p, labels, "the elbow threshold")
    return float(min(max(roc_elbow(labels, p), 0.0), 1.0))


def seed_f1_threshold(p: np.ndarray, labels: np.ndarray) -> float:
    """The cut with the best F1 on the labelled candidates (rule ``'seeds'``).

    Candidates are tried midway between neighbouring probabilities of the labelled
    ones (ties: the lowest cut).  Unbiased only when the model has not been trained on
    those labels (verify-only with a pretrained model); after training on them it is
    optimistic, like the ROC elbow.

    Parameters
    ----------
    p : array_like
        Probabilities of the labelled candidates.
    labels : array_like
        Their true classes, 0 or 1 (both needed).

    Returns
    -------
    float
    """
    p, labels = _labelled(p, labels, "the 'seeds' threshold")
    q = np.unique(p)
    cuts = np.concatenate([[q[0]], 0.5 * (q[1:] + q[:-1])])
    best, best_f1 = float(cuts[0]), -1.0
    for cut in cuts:
        called = p >= cut
        tp = np.sum(called & (labels == 1))
        f1 = 2.0 * tp / max(called.sum() + (labels == 1).sum(), 1)
        if f1 > best_f1:
            best, best_f1 = float(cut), f1
    return best


def cluster_threshold(p: np.ndarray, clump_fraction: float) -> float:
    """The threshold that calls a share ``clump_fraction`` of the candidates clumps.

    Semi-supervised training ends with a Constrained-KMeans partition of every
    candidate's features, seeded by the labelled ones; its clump cluster's share is an
    estimate of the clump fraction that needs no further labels.  The network's p = 0.5
    is not calibrated to it: trained on the nearest 40 % of each cluster, it gives
    high p to typical clumps and low p to the faint ones at the cluster's edge (on the
    synthetic benchmark the best threshold is near 0.05, and recall at 0.5 is 0.85-0.89).

    Parameters
    ----------
    p : array_like
        p(clump) of the candidates the fraction refers to (NaN ignored).
    clump_fraction : float
        Share of them to call clumps, in [0, 1].

    Returns
    -------
    float
        Midway between the last probability called a clump and the next one (1.0 when
        the fraction is 0, 0.0 when it is 1), so ``p >= threshold`` selects the share.
    """
    if not 0.0 <= clump_fraction <= 1.0:
        raise ValueError(f"clump_fraction must be in [0, 1], not {clump_fraction!r}")
    q = np.sort(np.asarray(p, dtype=np.float64).ravel())[::-1]
    q = q[np.isfinite(q)]
    k = int(round(clump_fraction * q.size))
    if q.size == 0 or k <= 0:
        return 1.0
    if k >= q.size:
        return 0.0
    return float(0.5 * (q[k - 1] + q[k]))


def verify_catalog(catalog: Table, p: np.ndarray, threshold: float = 0.5,
                   uncertain_band: float = 0.1, ids: np.ndarray | None = None) -> Table:
    """Copy of ``catalog`` with ``p_clump`` and ``verdict`` columns added or replaced.

    Parameters
    ----------
    catalog : astropy.table.Table
        Candidate catalogue with a ``clump_id`` column; every other column is kept.
    p : array_like
        p(clump), in the row order of ``catalog``, or in the order of ``ids``.
    threshold, uncertain_band : float
        See :func:`verdicts`.
    ids : array_like, optional
        Clump ids that ``p`` belongs to (e.g. ``samples.ids``); when given, ``p`` is
        matched to rows by ``clump_id`` and every row must have an id in ``ids``.

    Returns
    -------
    astropy.table.Table
        The new table; its meta records the threshold and band used.
    """
    _check_threshold(threshold, uncertain_band)
    if "clump_id" not in catalog.colnames:
        raise ValueError("the catalogue has no 'clump_id' column")
    p = np.asarray(p, dtype=np.float64).ravel()
    if ids is not None:
        ids = np.asarray(ids).ravel()
        if ids.shape != p.shape:
            raise ValueError(f"ids and p differ in length: {ids.size} vs {p.size}")
        position = {int(cid): i for i, cid in enumerate(ids)}
        rows = np.asarray(catalog["clump_id"]).astype(np.int64)
        missing = [int(c) for c in rows if int(c) not in position]
        if missing:
            raise ValueError(f"{len(missing)} catalogue clump_id(s) have no probability "
                             f"(e.g. {missing[:5]})")
        p = p[[position[int(c)] for c in rows]]
    elif p.size != len(catalog):
        raise ValueError(f"{p.size} probabilities for {len(catalog)} catalogue rows; pass "
                         f"one per row or the matching ids")
    out = catalog.copy(copy_data=True)
    new_columns = (
        Column(p, name="p_clump", unit=u.dimensionless_unscaled,
               description="SS-3D-Clump probability of being a clump"),
        Column(verdicts(p, threshold, uncertain_band), name="verdict",
               description=f"clump if p_clump >= {threshold:g}; uncertain within "
                           f"{uncertain_band:g} of it"),
    )
    for column in new_columns:
        if column.name in out.colnames:
            out.replace_column(column.name, column)
        else:
            out.add_column(column)
    out.meta["ssclump_threshold"] = float(threshold)
    out.meta["ssclump_uncertain_band"] = float(uncertain_band)
    return out
