"""SS-3D-Clump network, fast inference and device selection."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from glue_ssclump.core.device import describe_device, resolve_device
from glue_ssclump.core.model import (
    ARCH_VERSION,
    INPUT_SIZE,
    N_FEATURES,
    SSClumpNet,
    build_model,
    count_macs,
    count_parameters,
    infer,
    reference_features,
)
from glue_ssclump.core.progress import Cancelled, Progress


def _samples(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests share two cores with other workers; OpenMP barriers across descheduled
    # threads made small batches ~10x slower with 2 threads.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def model() -> SSClumpNet:
    torch.manual_seed(0)
    m = build_model()
    m.eval()
    return m


def test_constants():
    assert ARCH_VERSION == "ss3dclump-ref-1"
    assert INPUT_SIZE == 30
    assert N_FEATURES == 256


def test_parameter_count_and_macs(model):
    # Hand count: BN 2; stem 448; res 13,856 + 64 + 27,680 + 64 + skip 544; conv 55,360;
    # dense 2,097,664 + 131,328 + 4,112 + 34.
    assert count_parameters(model) == 2_331_156
    per_layer = count_macs(model, per_layer=True)
    assert per_layer["stem_conv"] == 15**3 * 16 * 27
    assert per_layer["res_conv1"] == 8**3 * 32 * 16 * 27
    assert per_layer["res_conv2"] == 8**3 * 32 * 32 * 27
    assert per_layer["res_skip"] == 8**3 * 32 * 16
    assert per_layer["conv3"] == 4**3 * 64 * 32 * 27
    assert per_layer["fc1"] == 4096 * 512
    assert count_macs(model) == 28_725_104
    assert model.training is False  # count_macs restores the mode


def test_shapes_and_composition(model):
    x = torch.from_numpy(_samples(3))
    f = model.features(x)
    logits = model(x)
    assert f.shape == (3, N_FEATURES)
    assert logits.shape == (3, 2)
    assert (f >= 0).all()  # post-ReLU
    torch.testing.assert_close(model.head(f), logits)
    p = model.predict_proba(x)
    assert p.shape == (3,)
    torch.testing.assert_close(p, torch.softmax(logits, 1)[:, 1])


def test_intermediate_shapes(model):
    seen = {}
    for name in ("stem_conv", "res_conv1", "res_skip", "conv3"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
    # training mode: in eval mode res_conv1 / res_conv2 run with their BatchNorm folded in
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(_samples(2)))
    assert seen == {"stem_conv": (16, 15, 15, 15), "res_conv1": (32, 8, 8, 8),
                    "res_skip": (32, 8, 8, 8), "conv3": (64, 4, 4, 4)}


def test_rejects_wrong_shape(model):
    with pytest.raises(ValueError, match=r"\(N, 1, 30, 30, 30\)"):
        model(torch.zeros(2, 1, 32, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        infer(model, np.zeros((2, 30, 30, 30), np.float32))


def test_channels_last_matches_contiguous(model):
    x = torch.from_numpy(_samples(4, seed=1))
    ref = model(x)
    out = model(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_seeded_build_is_deterministic():
    torch.manual_seed(3)
    a = build_model()
    torch.manual_seed(3)
    b = build_model()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        assert torch.equal(va, vb)


def test_dropout_only_in_training(model):
    x = torch.from_numpy(_samples(2, seed=2))
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    b = model(x)
    assert not torch.allclose(a, b)


def test_infer_array_matches_eager(model):
    x = _samples(7, seed=4)
    model.train()  # infer must switch to eval and restore this
    p, f = infer(model, x, batch_size=3)
    assert model.training is True
    model.eval()
    with torch.no_grad():
        xt = torch.from_numpy(x)
        ref_f = model.features(xt).numpy()
        ref_p = model.predict_proba(xt).numpy()
    assert p.dtype == np.float32 and f.dtype == np.float32
    assert p.shape == (7,) and f.shape == (7, N_FEATURES)
    np.testing.assert_allclose(f, ref_f, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p, ref_p, rtol=1e-4, atol=1e-6)
    p2, f2 = infer(model, x, batch_size=5, channels_last=False, num_threads=2)
    np.testing.assert_allclose(p2, p, rtol=1e-4, atol=1e-6)
    assert torch.get_num_threads() == 1  # restored


def test_infer_lays_cpu_weights_out_channels_last():
    torch.manual_seed(1)
    model = build_model()
    x = _samples(5, seed=8)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    p_plain, f_plain = infer(model, x, channels_last=False)
    assert all(w.is_contiguous() for w in convs)  # left as it was
    p, f = infer(model, x, device="cpu")  # converts the same Parameter objects
    # oneDNN would otherwise reorder the weights on every call (9-15% of the time)
    assert all(w.is_contiguous(memory_format=torch.channels_last_3d) for w in convs)
    np.testing.assert_allclose(p, p_plain, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(f, f_plain, rtol=1e-4, atol=1e-5)


class _ShuffledSource:
    """Minimal SampleSource: yields batches in a scrambled order with their positions."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def batches(self, batch_size, index=None, progress=None):
        order = np.random.default_rng(0).permutation(len(self.data))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield idx, self.data[idx]


def test_infer_source_results_in_source_order(model):
    x = _samples(9, seed=5)
    p_arr, f_arr = infer(model, x, batch_size=4)
    p_src, f_src = infer(model, _ShuffledSource(x), batch_size=4)
    np.testing.assert_allclose(p_src, p_arr, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(f_src, f_arr, rtol=1e-4, atol=1e-5)


def test_infer_reports_progress_and_cancels(model):
    x = _samples(6, seed=6)
    seen = []
    infer(model, x, batch_size=2, progress=Progress(lambda f, m: seen.append(f), min_interval=0))
    assert seen[-1] == pytest.approx(1.0)
    assert len(seen) >= 3

    event = threading.Event()
    prog = Progress(lambda f, m: event.set() if f > 0 else None, cancel_event=event,
                    min_interval=0)
    with pytest.raises(Cancelled):
        infer(model, x, batch_size=2, progress=prog)


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = build_model()
    x = torch.from_numpy(_samples(4, seed=7))
    y = torch.tensor([0, 1] * 2)
    x[y == 1, :, 10:20, 10:20, 10:20] += 1.0  # class 1 has a bright core
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.parameters())


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-please")
    assert "CPU" in describe_device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_resolve_device_cuda_absent():
    with pytest.raises(ValueError, match="CUDA is not available.*device='cpu'"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_infer_cuda_matches_cpu(model):  # pragma: no cover - GPU machines only
    x = _samples(5, seed=8)
    p_cpu, f_cpu = infer(model, x)
    p_gpu, f_gpu = infer(model, x, device="cuda")
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(f_gpu, f_cpu, rtol=1e-3, atol=1e-3)
    assert "CUDA" in describe_device("cuda")


def test_max_pool_matches_tensorflow_same_stride1():
    import torch.nn.functional as F

    from glue_ssclump.core.model import _max_pool2_same

    torch.manual_seed(0)
    x = torch.relu(torch.randn(2, 3, 15, 15, 15))
    ref = F.max_pool3d(F.pad(x, (0, 1, 0, 1, 0, 1)), kernel_size=2, stride=1)
    assert torch.equal(_max_pool2_same(x), ref)
    # the last voxel of each axis sees only itself and its 'same' padding
    assert torch.equal(_max_pool2_same(x)[..., -1, -1, -1], x[..., -1, -1, -1])
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(_max_pool2_same(xc), ref)


def test_tune_cpu_allocator_is_idempotent():
    from glue_ssclump.core.device import tune_cpu_allocator

    first = tune_cpu_allocator()
    assert isinstance(first, bool)
    assert tune_cpu_allocator() is first


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last_3d])
def test_training_step_matches_plain_modules(fmt):
    """Folded input BatchNorm + stem: same gradients, running statistics and outputs.

    float64, where the float32 rounding differences (1e-7) cannot flip a ReLU or a
    max-pool choice and so the comparison is exact up to 1e-9.
    """
    import copy

    import torch.nn.functional as F

    torch.manual_seed(5)
    fast = build_model(dropout=0.0).double()
    plain = copy.deepcopy(fast)
    fast = fast.to(memory_format=fmt)
    x = torch.rand(6, 1, 30, 30, 30, dtype=torch.float64).contiguous(memory_format=fmt)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    fast.train()
    plain.train()
    F.cross_entropy(fast.head(fast.features(x)), y).backward()
    F.cross_entropy(plain.head(reference_features(plain, x)), y).backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), plain.named_parameters(),
                                 strict=True):
        if name in ("res_conv1.bias", "res_conv2.bias"):
            # followed by a training-mode BatchNorm: the true gradient is 0, both sides
            # hold rounding noise
            assert float(a.grad.abs().max()) < 1e-12
            continue
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)
    for (name, a), (_, b) in zip(fast.named_buffers(), plain.named_buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=0, msg=name)
    # eval mode (BatchNorms folded into the convolutions) and saliency-style input grads
    fast.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast.features(x), reference_features(plain, x),
                                   rtol=1e-10, atol=1e-12)
    fast.train()
    plain.train()
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    fast.features(xa).sum().backward()
    reference_features(plain, xb).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-9, atol=1e-12)


def test_dropout_keep_fraction_layout_and_seed():
    from glue_ssclump.core.model import _dropout

    x = torch.ones(64, 32, 8, 8, 8).contiguous(memory_format=torch.channels_last_3d)
    torch.manual_seed(0)
    a = _dropout(x, 0.5, True)
    assert a.is_contiguous(memory_format=torch.channels_last_3d)
    assert set(torch.unique(a).tolist()) == {0.0, 2.0}
    assert abs(float((a > 0).float().mean()) - 0.5) < 0.005
    torch.manual_seed(0)
    assert torch.equal(_dropout(x, 0.5, True), a)
    b = _dropout(torch.ones(200_000), 0.2, True)
    assert abs(float((b > 0).float().mean()) - 0.8) < 0.005
    torch.testing.assert_close(b.mean(), torch.tensor(1.0), atol=0.01, rtol=0)
    assert _dropout(x, 0.5, False) is x
    assert float(_dropout(x, 1.0, True).abs().max()) == 0.0


def test_training_mode_batchnorms_inside_eval_model_update(model):
    """BatchNorm recalibration runs the BatchNorms alone in training mode: none may be
    folded away (a folded BatchNorm would keep its old statistics)."""
    norms = [model.input_bn, model.res_bn1, model.res_bn2]
    before = [m.running_var.clone() for m in norms]
    model.eval()
    for m in norms:
        m.train()
    with torch.no_grad():
        model.features(torch.from_numpy(_samples(4, seed=7)))
    for m, old in zip(norms, before, strict=True):
        assert not torch.equal(m.running_var, old)
