"""The long-work API: detect -> catalogue, verify with seeds, pools, cancel, verify-only."""

from __future__ import annotations

import numpy as np
import pytest

from glue_ssclump.core.checkpoint import save_checkpoint
from glue_ssclump.core.cube import cube_from_array
from glue_ssclump.core.pipeline import cross_match_seeds, detect, save_verification, verify
from glue_ssclump.core.progress import Progress
from glue_ssclump.core.synthetic import make_synthetic_cube, score_candidates
from glue_ssclump.core.training import TrainConfig

TINY = TrainConfig(epochs=1, passes=1, batch_size=32, infer_batch_size=64, seed=0,
                   device="cpu")


@pytest.fixture(scope="module")
def small():
    data, header, truth = make_synthetic_cube((32, 64, 64), seed=5)
    cube = cube_from_array(data, header)
    det = detect(cube, "fellwalker", rms=0.15, crossmatch_with="clumpfind")
    y = score_candidates(det.catalog, truth)
    assert y.any() and (~y).any()
    return cube, det, y


def _seeds(y, n=5):
    ids = np.flatnonzero(y)[:n].tolist() + np.flatnonzero(~y)[:n].tolist()
    out = np.full(y.size, -1)
    out[ids] = y[ids].astype(int)
    return out


def test_detect_catalogues_and_crossmatches(small):
    cube, det, _ = small
    assert det.mask.shape == cube.shape and det.mask.dtype == np.int32
    assert len(det.catalog) == det.mask.max()
    assert {"matched_by", "n_detectors"} <= set(det.catalog.colnames)
    assert det.catalog.meta["rms"] == 0.15


def test_cross_match_seeds_rule():
    from astropy.table import Table

    cat = Table({"clump_id": [1, 2, 3, 4, 5, 6], "n_detectors": [2, 1, 1, 2, 1, 1],
                 "snr_peak": [9.0, 5.5, 5.1, 7.0, 8.0, 6.0]})
    seeds = cross_match_seeds(cat, n_negative=2)
    assert seeds == {1: 1, 4: 1, 3: 0, 2: 0}  # faintest unmatched first
    assert sum(v == 0 for v in cross_match_seeds(cat).values()) == 4  # >= 10 capped by pool
    with pytest.raises(ValueError, match="cross-matched"):
        cross_match_seeds(Table({"clump_id": [1], "snr_peak": [5.0]}))


def test_verify_trains_and_keeps_columns(small, tmp_path):
    cube, det, y = small
    seeds = _seeds(y)
    epochs = []
    v = verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init="scratch",
               on_epoch=epochs.append)
    assert len(epochs) == 1 and not v.cancelled
    assert set(det.catalog.colnames) < set(v.catalog.colnames)
    assert {"p_clump", "verdict", "label"} <= set(v.catalog.colnames)
    assert np.all((v.p_clump >= 0) & (v.p_clump <= 1))
    np.testing.assert_array_equal(v.catalog["label"], seeds)
    assert sum(v.counts().values()) == len(det.catalog)
    paths = save_verification(v, tmp_path)
    assert all(p.is_file() for p in paths.values()) and {"model", "log", "plot"} <= set(paths)


def test_verify_only_reproduces_the_model(small, tmp_path):
    cube, det, y = small
    v = verify(cube.data, det.mask, det.catalog, _seeds(y), config=TINY, init="scratch")
    path = save_checkpoint(tmp_path / "m.pt", v.model, {})
    again = verify(cube.data, det.mask, det.catalog, None, config=TINY, init=str(path))
    assert again.train_result is None
    np.testing.assert_allclose(again.p_clump, v.p_clump, atol=1e-5)


def test_cancel_leaves_the_catalogue_alone(small):
    cube, det, y = small
    progress = Progress()
    two = TrainConfig(**{**TINY.to_dict(), "epochs": 2})
    v = verify(cube.data, det.mask, det.catalog, _seeds(y), config=two, init="scratch",
               progress=progress, on_epoch=lambda rec: progress.cancel())
    assert v.cancelled and v.train_result.completed_epochs == 1
    assert v.p_clump.size == 0 and "p_clump" not in v.catalog.colnames


def test_pool_restricts_training_and_rejects_empty(small):
    cube, det, y = small
    seeds = _seeds(y)
    pool = seeds >= 0
    pool[np.flatnonzero(seeds < 0)[:5]] = True
    v = verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init="scratch",
               pool=pool)
    assert v.p_clump.size == len(det.catalog)  # every candidate is verified
    with pytest.raises(ValueError, match="pool is empty"):
        verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init="scratch",
               pool=np.zeros(len(det.catalog), bool))


def test_empty_seed_class_names_the_fix(small):
    cube, det, y = small
    seeds = np.full(y.size, -1)
    seeds[np.flatnonzero(y)[:3]] = 1
    with pytest.raises(ValueError, match="(?i)not clump"):
        verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init="scratch")


def test_cluster_threshold_rule_matches_the_partition(small):
    """'clusters': the share called clumps is the final partition's clump share."""
    cube, det, y = small
    seeds = _seeds(y)
    v = verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init="scratch",
               threshold="clusters", uncertain_band=0.0)
    share = float(np.mean(v.train_result.pseudo_labels == 1))
    assert np.mean(v.p_clump >= v.threshold) == pytest.approx(share, abs=1.5 / y.size)
    assert v.catalog.meta["ssclump_threshold_rule"] == "clusters"
    # verify-only: a partition of the model's own features, seeded by the labels
    again = verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init=v.model,
                   train_model=False, threshold="clusters")
    assert again.train_result is None and 0.0 <= again.threshold <= 1.0
    with pytest.raises(ValueError, match="both classes"):
        verify(cube.data, det.mask, det.catalog, None, config=TINY, init=v.model,
               threshold="clusters")
    with pytest.raises(ValueError, match="'clusters' or 'elbow'"):
        verify(cube.data, det.mask, det.catalog, seeds, config=TINY, init=v.model,
               train_model=False, threshold="median")


def test_verify_reports_the_rms_it_used_and_where_from(small):
    """The sample background's rms changes the verdicts, so verify says which it used."""
    cube, det, y = small
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    from glue_ssclump.core.model import build_model

    model = build_model().eval()
    kw = {"config": TINY, "init": model, "train_model": False}
    v = verify(cube.data, det.mask, det.catalog, None, **kw)
    assert (v.rms, v.rms_source) == (0.15, "catalogue")
    assert v.catalog.meta["ssclump_rms"] == 0.15
    assert v.catalog.meta["ssclump_rms_source"] == "catalogue"
    low = verify(cube.data, det.mask, det.catalog, None, rms=0.05, **kw)
    assert (low.rms, low.rms_source) == (0.05, "option")
    # the same model on the same candidates scores differently at another rms
    assert np.max(np.abs(low.p_clump - v.p_clump)) > 1e-4
    bare = det.catalog.copy()
    bare.meta.pop("rms")
    est = verify(cube.data, det.mask, bare, None, **kw)
    assert est.rms_source == "estimate" and 0.1 < est.rms < 0.2


def test_context_arch_trains_saves_and_reloads(small, tmp_path):
    cube, det, y = small
    v = verify(cube.data, det.mask, det.catalog, _seeds(y), config=TINY, init="scratch",
               arch="context")
    assert v.model.arch == "context" and v.model.in_channels == 4
    assert np.all((v.p_clump >= 0) & (v.p_clump <= 1))
    paths = save_verification(v, tmp_path)
    again = verify(cube.data, det.mask, det.catalog, None, config=TINY,
                   init=str(paths["model"]))
    assert again.model.arch == "context"
    np.testing.assert_allclose(again.p_clump, v.p_clump, atol=1e-5)
