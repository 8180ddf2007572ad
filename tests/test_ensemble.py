"""The default verifier (arch='ensemble'): its sum of logits, checkpoints, and when
verify uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glue_ssclump.core.checkpoint import load_checkpoint, save_checkpoint
from glue_ssclump.core.cube import cube_from_array
from glue_ssclump.core.ensemble import BIAS, PAPER_WEIGHT, EnsembleNet
from glue_ssclump.core.model import build_model, infer
from glue_ssclump.core.pipeline import detect, resolve_arch, save_verification, verify
from glue_ssclump.core.synthetic import make_synthetic_cube, score_candidates
from glue_ssclump.core.training import TrainConfig

TINY = TrainConfig(epochs=1, passes=1, batch_size=32, infer_batch_size=64, seed=0,
                   device="cpu")


def _logit_diff(model, x):
    out = model(x)
    return (out[:, 1] - out[:, 0]).numpy()


def _members(seed=0):
    torch.manual_seed(seed)
    return build_model("context").eval(), build_model("paper").eval()


def test_ensemble_adds_the_members_logits():
    ctx, pap = _members()
    ens = EnsembleNet(ctx, pap, paper_weight=0.4, bias=-0.7).eval()
    x = torch.from_numpy(np.random.default_rng(1).random((6, 4, 30, 30, 30), np.float32))
    with torch.no_grad():
        want = _logit_diff(ctx, x) + 0.4 * _logit_diff(pap, x[:, :1].contiguous()) - 0.7
        got = _logit_diff(ens, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # infer (channels-last on the CPU) gives the same p, and the context features
    p, f = infer(ens, x.numpy(), batch_size=4)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-want)), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(f, ctx.features(x).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="context samples of shape"):
        ens(x[:, :1])
    with pytest.raises(ValueError, match="arch='context' and an arch='paper'"):
        EnsembleNet(pap, ctx)


def test_ensemble_checkpoint_keeps_members_and_weights(tmp_path):
    ens = EnsembleNet(*_members(2), paper_weight=0.1, bias=0.3).eval()
    path = save_checkpoint(tmp_path / "ens.pt", ens, {"note": "x"})
    again, meta = load_checkpoint(path)
    assert isinstance(again, EnsembleNet) and meta["arch"] == "ensemble"
    assert float(again.paper_weight) == pytest.approx(0.1)
    assert float(again.bias) == pytest.approx(0.3)
    x = torch.rand(3, 4, 30, 30, 30)
    with torch.no_grad():
        np.testing.assert_allclose(_logit_diff(again, x), _logit_diff(ens, x), atol=1e-6)


def test_shipped_ensemble_uses_the_chosen_weights():
    from glue_ssclump.core.training import load_initial_model

    ens = load_initial_model("default", "cpu", arch="ensemble")
    assert isinstance(ens, EnsembleNet) and not ens.training
    assert float(ens.paper_weight) == pytest.approx(PAPER_WEIGHT)
    assert float(ens.bias) == pytest.approx(BIAS)
    assert ens.context.arch == "context" and ens.paper.arch == "paper"
    with pytest.raises(ValueError, match="cannot start from scratch"):
        load_initial_model("scratch", "cpu", arch="ensemble")


@pytest.mark.parametrize("arch, init, train, want", [
    (None, "default", None, "ensemble"),
    (None, "default", False, "ensemble"),
    (None, "default", True, "paper"),
    (None, "scratch", None, "paper"),
    (None, "model.pt", None, "paper"),
    ("context", "default", None, "context"),
])
def test_resolve_arch(arch, init, train, want):
    assert resolve_arch(arch, init, train) == want


def test_resolve_arch_refuses_unknown_names():
    with pytest.raises(ValueError, match="arch must be one of"):
        resolve_arch("resnet", "default", None)


@pytest.fixture(scope="module")
def small():
    data, header, truth = make_synthetic_cube((32, 64, 64), seed=5)
    cube = cube_from_array(data, header)
    det = detect(cube, "fellwalker", rms=0.15)
    y = score_candidates(det.catalog, truth)
    seeds = np.full(y.size, -1)
    seeds[np.flatnonzero(y)[:5]] = 1
    seeds[np.flatnonzero(~y)[:5]] = 0
    return cube, det, seeds


def test_verify_defaults_to_the_untrained_ensemble(small, tmp_path):
    cube, det, seeds = small
    v = verify(cube.data, det.mask, det.catalog, seeds, config=TINY)
    assert v.model.arch == "ensemble" and v.train_result is None
    np.testing.assert_array_equal(np.asarray(v.catalog["label"]), seeds)  # labels kept
    assert np.all((v.p_clump >= 0) & (v.p_clump <= 1))
    # a saved ensemble is applied again as it is, even with labels
    paths = save_verification(v, tmp_path)
    again = verify(cube.data, det.mask, det.catalog, seeds, config=TINY,
                   init=str(paths["model"]))
    assert again.model.arch == "ensemble" and again.train_result is None
    np.testing.assert_allclose(again.p_clump, v.p_clump, atol=1e-6)
    # asking for training picks the paper's network, as before the ensemble existed
    trained = verify(cube.data, det.mask, det.catalog, seeds, config=TINY,
                     train_model=True)
    assert trained.model.arch == "paper" and trained.train_result is not None


def test_training_the_ensemble_is_a_clear_error(small):
    cube, det, seeds = small
    with pytest.raises(ValueError, match="cannot be trained on labels.*arch='paper'"):
        verify(cube.data, det.mask, det.catalog, seeds, config=TINY, arch="ensemble",
               train_model=True)
