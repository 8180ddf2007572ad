"""Checks of a training run's inputs: the seed labels and the held-out set.

Mistakes here would silently train a useless model (a class without seeds lets
Constrained-KMeans drift; a held-out candidate among the seeds leaks its label into
training), so they are refused with a message that says what to change.
"""

from __future__ import annotations

import warnings

import numpy as np

from .seeds import MIN_SEEDS

_CLASS_NAMES = {0: "not clump (0)", 1: "clump (1)"}


def _check_seeds(seed_labels: np.ndarray, n: int) -> np.ndarray:
    seeds = np.asarray(seed_labels)
    if seeds.shape != (n,):
        raise ValueError(f"seed_labels must have one entry per candidate, shape ({n},); "
                         f"got shape {seeds.shape}")
    if not np.issubdtype(seeds.dtype, np.integer):
        if not np.all(np.isfinite(seeds)) or np.any(seeds != np.round(seeds)):
            raise ValueError("seed_labels must be integers: -1 unlabelled, 0 not clump, "
                             "1 clump")
    seeds = seeds.astype(np.int64)
    bad = ~np.isin(seeds, (-1, 0, 1))
    if bad.any():
        raise ValueError(f"seed_labels may only hold -1 (unlabelled), 0 (not clump) and "
                         f"1 (clump); found {sorted(set(seeds[bad].tolist()))[:5]}")
    for cls in (0, 1):
        count = int(np.count_nonzero(seeds == cls))
        if count == 0:
            raise ValueError(
                f"no seed of class {_CLASS_NAMES[cls]}: Constrained-KMeans needs both "
                f"classes. Label at least one candidate of each class (clump = 1 and "
                f"not clump = 0; at least {MIN_SEEDS} each is better) before "
                f"training.")
        if count < MIN_SEEDS:
            warnings.warn(
                f"only {count} seed(s) of class {_CLASS_NAMES[cls]}; the clusters may "
                f"drift. Label at least {MIN_SEEDS} per class (the paper used "
                f"about 100-190 seeds per region).", UserWarning, stacklevel=3)
    return seeds


def _check_heldout(heldout: tuple[np.ndarray, np.ndarray] | None, seeds: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    if heldout is None:
        return None
    try:
        index, labels = heldout
    except (TypeError, ValueError):
        raise ValueError("heldout must be a pair (indices, labels)") from None
    index = np.asarray(index)
    labels = np.asarray(labels)
    if index.ndim != 1 or labels.shape != index.shape:
        raise ValueError(f"heldout indices and labels must be 1-D and equally long; got "
                         f"shapes {index.shape} and {labels.shape}")
    if index.size == 0:
        raise ValueError("heldout is empty; pass None for no held-out evaluation")
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError("heldout indices must be integers (positions in the samples)")
    n = seeds.shape[0]
    if index.min() < 0 or index.max() >= n:
        raise ValueError(f"heldout indices must lie in [0, {n}); got {index.min()}.."
                         f"{index.max()}")
    if np.unique(index).size != index.size:
        raise ValueError("heldout indices must be unique")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("heldout labels must be 0 (not clump) or 1 (clump)")
    overlap = index[seeds[index] >= 0]
    if overlap.size:
        raise ValueError(
            f"{overlap.size} held-out candidate(s) are also seeds (e.g. index "
            f"{overlap[:5].tolist()}): held-out labels must never train the model. Remove "
            f"them from the seeds (set -1) or from the held-out set.")
    return index.astype(np.int64), labels.astype(np.int64)
