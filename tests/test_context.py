"""arch='context': four-channel samples, the network, checkpoints and pretraining helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glue_ssclump.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from glue_ssclump.core.context import ContextSamples
from glue_ssclump.core.model import ARCH_VERSION, build_model, infer
from glue_ssclump.core.pretrain import FlipAugment
from glue_ssclump.core.samples import CandidateSamples
from glue_ssclump.core.training import DEFAULT_CHECKPOINT, load_initial_model


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(0)
    data = rng.normal(0, 0.1, (40, 50, 50)).astype(np.float32)
    z, y, x = np.mgrid[:40, :50, :50]
    data += 2.0 * np.exp(-0.5 * ((z - 20) ** 2 / 4 + (y - 25) ** 2 / 3 + (x - 25) ** 2 / 3))
    data[:, :, :3] = np.nan
    mask = np.zeros(data.shape, np.int32)
    mask[17:24, 22:29, 22:29] = 1
    mask[17:24, 22:29, 29:33] = 2           # a neighbour touching it
    mask[18:22, 10:14, 3:7] = 3             # next to the NaN strip
    return data, mask


def test_context_samples_channels(cube):
    data, mask = cube
    src = ContextSamples(data, mask, rms=0.1, lag1=0.0)
    x = src.get(np.arange(3))
    assert x.shape == (3, 4, 30, 30, 30) and x.dtype == np.float32
    # channel 0 is the paper's sample, unchanged
    paper = CandidateSamples(data, mask, rms=0.1, lag1=0.0).get(np.arange(3))
    np.testing.assert_allclose(x[:, :1], paper, atol=2e-3)
    # the window is centred on the peak: the peak's own mask voxel is at (15, 15, 15)
    assert x[0, 2, 15, 15, 15] == 1.0 and np.any(x[0, 2] == 0.5)  # own and neighbour
    # context keeps the SNR: asinh(T / (2 rms)) / 2 at the peak
    peak = np.nanmax(np.where(mask == 1, data, -np.inf))
    assert x[0, 1, 15, 15, 15] == pytest.approx(np.arcsinh(peak / 0.2) / 2, rel=2e-3)
    # valid: 0 on the NaN strip and beyond the cube's edge, 1 elsewhere
    assert x[2, 3].min() == 0.0 and x[2, 3].max() == 1.0
    assert x[0, 3].all()


def test_context_rms_scales_the_context_channel(cube):
    data, mask = cube
    a = ContextSamples(data, mask, rms=0.1, lag1=0.0).get([0])
    b = ContextSamples(data, mask, rms=0.2, lag1=0.0).get([0])
    assert a[0, 1, 15, 15, 15] > b[0, 1, 15, 15, 15]
    np.testing.assert_array_equal(a[0, 2:], b[0, 2:])


def test_context_network_and_checkpoint(cube, tmp_path):
    data, mask = cube
    torch.manual_seed(0)
    model = build_model("context")
    assert model.arch == "context" and model.in_channels == 4
    assert build_model().arch == "paper" and build_model().arch_version == ARCH_VERSION
    p, f = infer(model, ContextSamples(data, mask, rms=0.1, lag1=0.0))
    assert p.shape == (3,) and f.shape == (3, 256)
    with pytest.raises(ValueError, match="4, 30"):
        infer(model, np.zeros((2, 1, 30, 30, 30), np.float32))
    path = save_checkpoint(tmp_path / "ctx.pt", model)
    again, meta = load_checkpoint(path)
    assert meta["arch"] == "context" and again.in_channels == 4
    for k, v in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    # a context file's weights do not fit the paper's network: named, not crashed
    state = torch.load(path, weights_only=True)
    state["metadata"]["arch_version"] = ARCH_VERSION
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="wrong tensor shapes"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="arch"):
        build_model("figure")


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason="no shipped checkpoint")
def test_shipped_checkpoint_loads_as_paper():
    model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    assert model.arch == "paper" and meta["arch"] == "paper" and "arch" not in (
        torch.load(DEFAULT_CHECKPOINT, weights_only=True)["metadata"])
    assert load_initial_model("scratch", "cpu", arch="context").in_channels == 4


def test_flip_augment_keeps_values_and_ids(cube):
    data, mask = cube
    src = ContextSamples(data, mask, rms=0.1, lag1=0.0)
    aug = FlipAugment(src, seed=3)
    assert np.array_equal(aug.ids, src.ids)
    x, y = src.get([0, 1]), aug.get([0, 1])
    assert y.shape == x.shape and y.flags.c_contiguous
    np.testing.assert_allclose(np.sort(y.ravel()), np.sort(x.ravel()))
