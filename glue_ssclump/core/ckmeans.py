"""Constrained-KMeans (seeded K-means with pinned seeds; Basu et al. 2002).

SS-3D-Clump clusters the network's 256-d features into K = 2 groups each epoch.  A few
labelled samples (the seeds) fix what each cluster means: cluster ``k`` starts at the
mean of the seeds of class ``k`` and the seeds never leave it, so cluster ids cannot
swap between epochs and cluster 1 is always "clump".

Iteration (all vectorised, float64):

1. E-step: every non-seed point joins its nearest centroid (Euclidean); seeds keep
   their label.  Exact ties go to the lower cluster id.
2. Empty clusters (possible only for a class without seeds, or when many points
   collapse) are re-seeded with the point furthest from its own centroid among points
   that are not seeds and not the sole member of their cluster.
3. M-step: every centroid becomes the mean of all its members, seeds included.
4. Mean distance of all points to their own (updated) centroid; stop when it changed
   by less than ``tol`` from the previous iteration, or after ``max_iter`` iterations.

A class with no seeds is initialised farthest-first: at the point furthest from the
centroids already placed (or from the data mean, if no class has seeds).  The reference
implementation restarts 20 times and keeps the best run; with seeds in every class its
start is deterministic, so one run is the same thing.  This implementation is fully
deterministic for a given input.

:func:`select_confident` picks the training set of an epoch (METHOD.md section 4,
step 3): per cluster the points nearest its centroid, plus all seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CKMeansResult", "constrained_kmeans", "select_confident"]


@dataclass
class CKMeansResult:
    """Outcome of :func:`constrained_kmeans`.

    Attributes
    ----------
    labels : ndarray
        ``(N,)`` int64 cluster of every point; seeds keep their seed label.
    centroids : ndarray
        ``(K, D)`` float64 final centroids (means of the final members).
    distances : ndarray
        ``(N,)`` float64 Euclidean distance of every point to its own centroid.
    n_iter : int
        Iterations run (E-step + M-step pairs).
    mean_distance : float
        Mean of ``distances``.
    converged : bool
        True when the stop criterion (``tol``) was met before ``max_iter``.
    seed_mask : ndarray
        ``(N,)`` bool, True for seeds.
    """

    labels: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    n_iter: int
    mean_distance: float
    converged: bool
    seed_mask: np.ndarray

    @property
    def n_clusters(self) -> int:
        """Number of clusters K."""
        return int(self.centroids.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """``(K,)`` members per cluster."""
        return np.bincount(self.labels, minlength=self.n_clusters)


def _sq_dist(X: np.ndarray, sq_norms: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(N, K)`` via ||x||^2 - 2 x.c + ||c||^2 (clamped >= 0)."""
    d2 = sq_norms[:, None] - 2.0 * (X @ C.T) + np.einsum("kd,kd->k", C, C)[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _class_sums(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per-cluster sums ``(K, D)``: one matrix-vector product per cluster."""
    sums = np.empty((k, X.shape[1]), dtype=np.float64)
    for c in range(k):
        sums[c] = (labels == c).astype(np.float64) @ X
    return sums


def _own_distances(X: np.ndarray, C: np.ndarray, labels: np.ndarray,
                   block: int = 4096) -> np.ndarray:
    """Exact Euclidean distances to the own centroid, in cache-sized blocks."""
    out = np.empty(len(X), dtype=np.float64)
    for start in range(0, len(X), block):
        diff = X[start:start + block] - C[labels[start:start + block]]
        out[start:start + block] = np.sqrt(np.einsum("nd,nd->n", diff, diff))
    return out


def _fill_empty(labels: np.ndarray, own_d2: np.ndarray, seed_mask: np.ndarray,
                k: int) -> np.ndarray:
    """Move the furthest movable point into each empty cluster (in cluster-id order)."""
    counts = np.bincount(labels, minlength=k)
    if counts.min() > 0:
        return labels
    labels = labels.copy()
    own_d2 = own_d2.copy()
    for empty in np.flatnonzero(counts == 0):
        movable = ~seed_mask & (counts[labels] > 1)
        if not movable.any():
            break  # fewer movable points than clusters: leave the cluster empty
        cand = np.where(movable, own_d2, -np.inf)
        i = int(np.argmax(cand))  # first index among equals: deterministic
        counts[labels[i]] -= 1
        labels[i] = empty
        counts[empty] = 1
        own_d2[i] = 0.0
    return labels


def _initial_centroids(X: np.ndarray, seed_labels: np.ndarray, k: int) -> np.ndarray:
    d = X.shape[1]
    C = np.zeros((k, d), dtype=np.float64)
    placed = np.zeros(k, dtype=bool)
    for c in range(k):
        members = seed_labels == c
        if members.any():
            C[c] = X[members].mean(axis=0)
            placed[c] = True
    for c in range(k):
        if placed[c]:
            continue
        if placed.any():
            ref = C[placed]
        else:
            ref = X.mean(axis=0, keepdims=True)
        d2 = ((X[:, None, :] - ref[None, :, :]) ** 2).sum(-1).min(axis=1)
        C[c] = X[int(np.argmax(d2))]
        placed[c] = True
    return C


def constrained_kmeans(
    X: np.ndarray,
    seed_labels: np.ndarray,
    n_clusters: int = 2,
    max_iter: int = 300,
    tol: float = 1e-9,
) -> CKMeansResult:
    """Seeded K-means with the seeds' labels pinned (METHOD.md section 3).

    Parameters
    ----------
    X : array_like
        ``(N, D)`` points (e.g. 256-d network features); computed in float64.
    seed_labels : array_like of int
        ``(N,)``: ``-1`` for unlabelled points, ``0..n_clusters-1`` for seeds.
    n_clusters : int
        K (2 for clump / not clump).
    max_iter : int
        Maximum number of iterations.
    tol : float
        Stop when the mean distance to the own centroid changes by less than this.

    Returns
    -------
    CKMeansResult

    Raises
    ------
    ValueError
        For mismatched shapes, labels outside ``-1..n_clusters-1``, non-finite points,
        fewer points than clusters or a non-positive ``max_iter``.
    """
    X = np.asarray(X, dtype=np.float64)
    seed_labels = np.asarray(seed_labels)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (N, D), got shape {X.shape}")
    n = X.shape[0]
    if seed_labels.shape != (n,):
        raise ValueError(f"seed_labels must have shape ({n},), got {seed_labels.shape}")
    if not np.issubdtype(seed_labels.dtype, np.integer):
        if seed_labels.size and not np.all(np.equal(np.mod(seed_labels, 1), 0)):
            raise ValueError("seed_labels must be integers (-1 = unlabelled)")
        seed_labels = seed_labels.astype(np.int64)
    seed_labels = seed_labels.astype(np.int64, copy=False)
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if n < n_clusters:
        raise ValueError(f"need at least n_clusters={n_clusters} points, got {n}")
    bad = (seed_labels < -1) | (seed_labels >= n_clusters)
    if bad.any():
        raise ValueError(
            f"seed_labels must be -1 (unlabelled) or 0..{n_clusters - 1}; found "
            f"{sorted(set(seed_labels[bad].tolist()))[:5]}"
        )
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")

    seed_mask = seed_labels >= 0
    seed_vals = seed_labels[seed_mask]
    sq_norms = np.einsum("nd,nd->n", X, X)
    C = _initial_centroids(X, seed_labels, n_clusters)
    rows = np.arange(n)

    prev = np.inf
    converged = False
    n_iter = 0
    labels = seed_labels.copy()
    prev_labels: np.ndarray | None = None
    sums = np.zeros_like(C)
    counts = np.zeros(n_clusters, dtype=np.int64)
    d2 = _sq_dist(X, sq_norms, C)
    for _ in range(max_iter):
        n_iter += 1
        # E-step: nearest centroid; seeds pinned; empty clusters re-seeded.
        labels = np.argmin(d2, axis=1)
        labels[seed_mask] = seed_vals
        labels = _fill_empty(labels, d2[rows, labels], seed_mask, n_clusters)
        # M-step.  The class sums are updated with the points that moved only (late
        # iterations move a handful of points); a full pass when many moved.
        moved = None if prev_labels is None else np.flatnonzero(labels != prev_labels)
        if moved is None or moved.size > n // 8:
            sums = _class_sums(X, labels, n_clusters)
        elif moved.size:
            np.add.at(sums, labels[moved], X[moved])
            np.subtract.at(sums, prev_labels[moved], X[moved])
        counts = np.bincount(labels, minlength=n_clusters)
        nonempty = counts > 0
        C = C.copy()
        C[nonempty] = sums[nonempty] / counts[nonempty, None]
        # Stop criterion on the mean distance to the updated centroids; the same
        # distances serve the next E-step (one pass over X per iteration).
        d2 = _sq_dist(X, sq_norms, C)
        mean = float(np.sqrt(d2[rows, labels]).mean())
        prev_labels = labels
        if abs(prev - mean) < tol:
            converged = True
            break
        prev = mean

    # Report exact means of the final members and exact distances to them (the
    # incremental sums and the expanded distance formula each lose a few digits).
    counts = np.bincount(labels, minlength=n_clusters)
    nonempty = counts > 0
    C[nonempty] = _class_sums(X, labels, n_clusters)[nonempty] / counts[nonempty, None]
    distances = _own_distances(X, C, labels)
    return CKMeansResult(
        labels=labels.astype(np.int64),
        centroids=C,
        distances=distances,
        n_iter=n_iter,
        mean_distance=float(distances.mean()),
        converged=converged,
        seed_mask=seed_mask,
    )


def select_confident(result: CKMeansResult, ratio: float = 0.4) -> np.ndarray:
    """Mask of the points trusted as pseudo-labels for one training epoch.

    Per cluster with ``n`` members, keep the members whose distance to the centroid is
    at most the value at index ``int(ratio * n)`` of the cluster's ascending distances
    (about the nearest ``ratio`` fraction; ties at the threshold are all kept), plus all
    seeds.

    Parameters
    ----------
    result : CKMeansResult
        Output of :func:`constrained_kmeans`.
    ratio : float
        Fraction in [0, 1]; ``1`` keeps everything.

    Returns
    -------
    ndarray
        ``(N,)`` bool.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    keep = result.seed_mask.copy()
    for k in range(result.n_clusters):
        members = result.labels == k
        n = int(members.sum())
        if n == 0:
            continue
        d = np.sort(result.distances[members])
        threshold = d[min(int(ratio * n), n - 1)]
        keep |= members & (result.distances <= threshold)
    return keep
