"""Verification: probabilities, verdicts, elbow threshold and catalogue columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy import units as u
from astropy.table import Table

from glue_ssclump.core.model import build_model
from glue_ssclump.core.samples import ArraySamples
from glue_ssclump.core.verify import (
    cluster_threshold,
    elbow_threshold,
    predict,
    seed_f1_threshold,
    verdicts,
    verify_catalog,
)


def _catalog(n: int = 5) -> Table:
    t = Table()
    t["clump_id"] = np.arange(10, 10 + n)
    t["peak"] = np.linspace(1.0, 2.0, n) * u.K
    t["name"] = [f"C{i}" for i in range(n)]
    t.meta["detector"] = "dendrogram"
    return t


def test_verdicts_band_and_threshold():
    p = np.array([0.0, 0.35, 0.45, 0.5, 0.55, 0.65, 1.0, np.nan])
    expected = ["rejected", "rejected", "uncertain", "uncertain", "uncertain", "clump",
                "clump", "uncertain"]
    assert verdicts(p).tolist() == expected
    # No band: only the threshold decides (p == threshold is a clump).
    assert verdicts(p[:7], 0.5, 0.0).tolist() == [
        "rejected", "rejected", "rejected", "clump", "clump", "clump", "clump"]
    # Another operating point (the paper's elbow, 0.88).
    assert verdicts([0.80, 0.86, 0.95], 0.88, 0.05).tolist() == [
        "rejected", "uncertain", "clump"]
    assert verdicts(np.zeros((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError):
        verdicts(p, threshold=1.5)
    with pytest.raises(ValueError):
        verdicts(p, uncertain_band=-0.1)


def test_verify_catalog_keeps_columns_and_adds_results():
    cat = _catalog()
    p = np.array([0.9, 0.1, 0.52, 0.7, 0.2])
    out = verify_catalog(cat, p, threshold=0.5, uncertain_band=0.1)
    assert out.colnames == ["clump_id", "peak", "name", "p_clump", "verdict"]
    assert out["peak"].unit == u.K and out.meta["detector"] == "dendrogram"
    assert out["p_clump"].unit == u.dimensionless_unscaled
    assert out["p_clump"].dtype.kind == "f"
    assert np.allclose(out["p_clump"], p)
    assert list(out["verdict"]) == ["clump", "rejected", "uncertain", "clump", "rejected"]
    assert out.meta["ssclump_threshold"] == 0.5
    assert "p_clump" not in cat.colnames  # the input is not modified

    # A second pass replaces the columns in place (no duplicates, order kept).
    again = verify_catalog(out, 1.0 - p, threshold=0.5, uncertain_band=0.0)
    assert again.colnames == out.colnames
    assert list(again["verdict"]) == ["rejected", "clump", "rejected", "rejected", "clump"]


def test_verify_catalog_matches_ids_and_checks_lengths():
    cat = _catalog()
    ids = np.array([14, 12, 10, 13, 11])
    p = np.array([0.4, 0.2, 0.0, 0.3, 0.1])  # p = (id - 10) / 10 in shuffled order
    out = verify_catalog(cat, p, ids=ids, uncertain_band=0.0)
    assert np.allclose(out["p_clump"], (np.asarray(cat["clump_id"]) - 10) / 10)
    with pytest.raises(ValueError, match="no probability"):
        verify_catalog(cat, p[:4], ids=ids[:4])
    with pytest.raises(ValueError, match="4 probabilities for 5"):
        verify_catalog(cat, p[:4])
    with pytest.raises(ValueError, match="clump_id"):
        verify_catalog(Table({"x": [1.0]}), [0.5])


def test_predict_matches_the_model():
    rng = np.random.default_rng(0)
    x = rng.random((7, 1, 30, 30, 30), dtype=np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model()
    p = predict(model, ArraySamples(x), device="cpu", batch_size=3)
    assert p.shape == (7,) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    model.eval()
    with torch.no_grad():
        ref = model.predict_proba(torch.from_numpy(x)).numpy()
    assert np.allclose(p, ref, atol=1e-5)


def test_elbow_threshold_separates_separable_scores():
    labels = np.r_[np.zeros(10, int), np.ones(10, int)]
    p = np.r_[np.linspace(0.05, 0.6, 10), np.linspace(0.7, 0.99, 10)]
    t = elbow_threshold(p, labels)
    assert 0.6 < t <= 0.7
    assert np.array_equal((p >= t).astype(int), labels)
    with pytest.raises(ValueError, match="both classes"):
        elbow_threshold(p[:10], labels[:10])


def test_cluster_threshold_calls_the_given_share():
    p = np.array([0.9, 0.02, 0.6, 0.05, 0.3, np.nan, 0.07, 0.01])
    # 7 finite values; 3/7 called clumps: 0.9, 0.6, 0.3 -> midway to 0.07
    t = cluster_threshold(p, 3 / 7)
    assert t == pytest.approx(0.185)
    assert np.sum(p >= t) == 3
    assert cluster_threshold(p, 0.0) == 1.0
    assert cluster_threshold(p, 1.0) == 0.0
    assert cluster_threshold([], 0.5) == 1.0
    with pytest.raises(ValueError, match="clump_fraction"):
        cluster_threshold(p, 1.5)


def test_seed_f1_threshold_maximises_f1_on_the_labels():
    p = np.array([0.95, 0.9, 0.4, 0.35, 0.3, 0.1, 0.05])
    labels = np.array([1, 1, 1, 0, 1, 0, 0])
    t = seed_f1_threshold(p, labels)
    # calling the top 5 (one false among them) gives F1 8/9, the best cut here
    assert 0.1 < t < 0.3 and np.sum(p >= t) == 5
    assert seed_f1_threshold(np.array([0.2, 0.8]), np.array([0, 1])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both classes"):
        seed_f1_threshold(p[:2], labels[:2])
