"""Constrained-KMeans and the per-epoch selection of confident pseudo-labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glue_ssclump.core.ckmeans import CKMeansResult, constrained_kmeans, select_confident


def reference_ckmeans(X, seeds, k, max_iter=300, tol=1e-9):
    """Plain loop implementation of METHOD.md section 3 (every class seeded)."""
    X = [list(map(float, row)) for row in X]
    n, d = len(X), len(X[0])

    def dist(a, b):
        return math.sqrt(sum((a[j] - b[j]) ** 2 for j in range(d)))

    def mean_of(rows):
        return [sum(r[j] for r in rows) / len(rows) for j in range(d)]

    C = [mean_of([X[i] for i in range(n) if seeds[i] == c]) for c in range(k)]
    prev = math.inf
    n_iter = 0
    labels = list(seeds)
    for _ in range(max_iter):
        n_iter += 1
        for i in range(n):
            if seeds[i] >= 0:
                labels[i] = seeds[i]
            else:
                ds = [dist(X[i], C[c]) for c in range(k)]
                labels[i] = ds.index(min(ds))
        C = [mean_of([X[i] for i in range(n) if labels[i] == c]) for c in range(k)]
        mean = sum(dist(X[i], C[labels[i]]) for i in range(n)) / n
        if abs(prev - mean) < tol:
            break
        prev = mean
    distances = [dist(X[i], C[labels[i]]) for i in range(n)]
    return np.array(labels), np.array(C), np.array(distances), n_iter


def _random_seeds(rng, n, k, per_class):
    seeds = np.full(n, -1)
    idx = rng.permutation(n)[: k * per_class]
    seeds[idx] = np.repeat(np.arange(k), per_class)
    return seeds


@pytest.mark.parametrize("case", [(0, 2, 4), (1, 2, 16), (2, 3, 6), (3, 4, 3)])
def test_matches_loop_reference(case):
    seed, k, d = case
    rng = np.random.default_rng(seed)
    n = 240
    X = rng.normal(size=(n, d)) + rng.integers(0, k, n)[:, None] * 0.8
    seeds = _random_seeds(rng, n, k, per_class=5)
    res = constrained_kmeans(X, seeds, n_clusters=k)
    ref_labels, ref_C, ref_dist, ref_iter = reference_ckmeans(X, seeds, k)
    np.testing.assert_array_equal(res.labels, ref_labels)
    np.testing.assert_allclose(res.centroids, ref_C, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.distances, ref_dist, rtol=1e-10, atol=1e-12)
    assert res.n_iter == ref_iter
    assert res.converged
    assert res.mean_distance == pytest.approx(ref_dist.mean(), rel=1e-12)
    assert res.n_iter > 1  # the data were hard enough to need more than one step


def test_seeds_never_change_cluster():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(100, 3))
    b = rng.normal(size=(100, 3)) + 10.0
    X = np.vstack([a, b])
    seeds = np.full(200, -1)
    seeds[:3] = 0
    seeds[100:103] = 1
    seeds[150] = 0  # a wrong seed deep inside blob 1 stays in cluster 0
    seeds[50] = 1  # and vice versa
    res = constrained_kmeans(X, seeds)
    pinned = seeds >= 0
    np.testing.assert_array_equal(res.labels[pinned], seeds[pinned])
    np.testing.assert_array_equal(res.seed_mask, pinned)
    # every other point follows its blob
    truth = np.repeat([0, 1], 100)
    np.testing.assert_array_equal(res.labels[~pinned], truth[~pinned])


def test_blobs_recovered_exactly():
    rng = np.random.default_rng(7)
    k, d, per = 3, 10, 200
    centres = rng.normal(size=(k, d)) * 20
    truth = np.repeat(np.arange(k), per)
    X = centres[truth] + rng.normal(size=(k * per, d))
    seeds = np.full(k * per, -1)
    for c in range(k):
        seeds[np.flatnonzero(truth == c)[:3]] = c
    res = constrained_kmeans(X.astype(np.float32), seeds, n_clusters=k)
    np.testing.assert_array_equal(res.labels, truth)
    np.testing.assert_allclose(res.centroids, X[np.argsort(truth, kind="stable")]
                               .reshape(k, per, d).mean(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(res.counts, [per] * k)


def test_empty_cluster_reseeded_from_furthest_point():
    # Both seeds belong to class 0; class 1 is initialised at the furthest point, which
    # is a (pinned) seed, so cluster 1 is empty after the first E-step.  It must be
    # re-seeded with the furthest movable point (0.9), then grows to {0.5, 0.9}.
    X = np.array([[10.0], [-10.0], [0.1], [-0.2], [0.5], [0.9]])
    seeds = np.array([0, 0, -1, -1, -1, -1])
    res = constrained_kmeans(X, seeds, n_clusters=2)
    np.testing.assert_array_equal(res.labels, [0, 0, 0, 0, 1, 1])
    np.testing.assert_allclose(res.centroids[:, 0], [(10 - 10 + 0.1 - 0.2) / 4, 0.7])
    assert res.converged


def test_unseeded_classes_and_no_seeds_are_deterministic():
    rng = np.random.default_rng(11)
    X = np.vstack([rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 8])
    r1 = constrained_kmeans(X, np.full(100, -1))
    r2 = constrained_kmeans(X, np.full(100, -1))
    np.testing.assert_array_equal(r1.labels, r2.labels)
    assert len(set(r1.labels[:50])) == 1 and len(set(r1.labels[50:])) == 1
    assert r1.labels[0] != r1.labels[99]


def test_max_iter_and_result_fields():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 8))
    seeds = _random_seeds(rng, 300, 2, per_class=2)
    res = constrained_kmeans(X, seeds, max_iter=1)
    assert res.n_iter == 1 and not res.converged
    assert res.labels.dtype == np.int64 and res.labels.shape == (300,)
    assert res.centroids.shape == (2, 8) and res.distances.shape == (300,)
    np.testing.assert_allclose(res.distances,
                               np.linalg.norm(X - res.centroids[res.labels], axis=1))
    for c in range(2):  # centroids are the means of the final members
        np.testing.assert_allclose(res.centroids[c], X[res.labels == c].mean(0))


def test_input_validation():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="seed_labels must be -1"):
        constrained_kmeans(X, np.array([0, 1, 2, -1, -1]))
    with pytest.raises(ValueError, match="shape"):
        constrained_kmeans(X, np.array([0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        constrained_kmeans(np.zeros(5), np.full(5, -1))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        constrained_kmeans(bad, np.full(5, -1))
    with pytest.raises(ValueError, match="at least"):
        constrained_kmeans(np.zeros((1, 2)), np.array([0]))


def _result(labels, distances, seeds):
    labels = np.asarray(labels)
    return CKMeansResult(labels=labels, centroids=np.zeros((2, 1)),
                         distances=np.asarray(distances, float), n_iter=1,
                         mean_distance=float(np.mean(distances)), converged=True,
                         seed_mask=np.asarray(seeds) >= 0)


def test_select_confident_hand_computed():
    # cluster 0: distances 5 1 3 2 4 -> n=5, index int(0.4*5)=2 of [1,2,3,4,5] -> 3
    # cluster 1: distances 0.5 0.7 9 -> n=3, index int(1.2)=1 of [0.5,0.7,9] -> 0.7;
    #            the point at 9 is a seed and is kept anyway.
    labels = [0, 0, 0, 0, 0, 1, 1, 1]
    dist = [5, 1, 3, 2, 4, 0.5, 0.7, 9]
    seeds = [-1, -1, -1, -1, -1, -1, -1, 1]
    keep = select_confident(_result(labels, dist, seeds), ratio=0.4)
    np.testing.assert_array_equal(keep, [False, True, True, True, False, True, True, True])
    # ratio 0 keeps the nearest member of each cluster (and the seeds)
    keep0 = select_confident(_result(labels, dist, seeds), ratio=0.0)
    np.testing.assert_array_equal(keep0, [False, True, False, False, False, True, False, True])
    assert select_confident(_result(labels, dist, seeds), ratio=1.0).all()


def test_select_confident_ties_and_validation():
    res = _result([0, 0, 0, 0], [1.0, 2.0, 2.0, 2.0], [-1] * 4)
    # index int(0.4*4)=1 -> 2.0; all three tied points are kept
    assert select_confident(res).sum() == 4
    with pytest.raises(ValueError, match="ratio"):
        select_confident(res, ratio=1.5)


def test_select_confident_on_real_run():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(500, 4)), rng.normal(size=(500, 4)) + 5])
    seeds = np.full(1000, -1)
    seeds[:5] = 0
    seeds[500:505] = 1
    res = constrained_kmeans(X, seeds)
    keep = select_confident(res, 0.4)
    assert keep[seeds >= 0].all()
    for c in range(2):
        n = int((res.labels == c).sum())
        kept = int((keep & (res.labels == c) & (seeds < 0)).sum())
        assert int(0.4 * n) - 5 <= kept <= int(0.4 * n) + 1
        # the kept points are the nearest ones
        inside = res.distances[keep & (res.labels == c) & (seeds < 0)].max()
        outside = res.distances[~keep & (res.labels == c)].min()
        assert inside < outside
