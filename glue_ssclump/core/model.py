"""The SS-3D-Clump network (Luo et al. 2024, A&A 683, A104) and fast inference.

:class:`SSClumpNet` is the 3D CNN + fully connected classifier that turns a
30 x 30 x 30 candidate sample into two logits (class 1 = clump, class 0 = not clump).
Its 256-d penultimate representation (:meth:`SSClumpNet.features`) is what
Constrained-KMeans clusters during semi-supervised training.

The layer stack follows the authors' reference code (TensorFlow 2.3), which produced
the published numbers, rather than the paper's Fig. 8 where the two disagree:

* the stem max-pool has stride 1 (the figure says stride 2), so the stem keeps 15^3;
* the residual block uses 32 filters and the last convolution 64 (the figure's text
  lists 16, 32, 32, 32, 32 filters);
* a BatchNorm normalises the raw input before the stem;
* the flattened tensor is 4 x 4 x 4 x 64 = 4096 values, read in TensorFlow's
  channels-last order (d, h, w, c), so the first Dense layer sees the same ordering as
  the reference.

Differences from the reference code that change no shape:

* convolutions use PyTorch's symmetric ``padding=1``.  TensorFlow's 'same' padding for
  a stride-2, 3^3 kernel on an even size (30 -> 15, 8 -> 4) pads only at the end; the
  output sizes are identical, the sampling grid is shifted by one voxel.  On 15 -> 8 the
  two agree exactly.  Weights trained with TensorFlow are therefore not portable here
  (and are not needed: models are trained with this package);
* the stem max-pool reproduces 'same' with stride 1 by padding one voxel at the end of
  each axis (exactly TensorFlow's choice; zeros are neutral after the ReLU);
* BatchNorm uses Keras' defaults (eps 1e-3, running-average momentum 0.99, i.e. PyTorch
  ``momentum=0.01``) and weights are Glorot-uniform with zero biases, as in Keras.

About 2.33 M parameters and 28.7 M multiply-adds per sample (:func:`count_macs`): the
stem and residual-block convolutions hold 79 % of the arithmetic (the 32 -> 32 one alone
49 %), the last convolution 12 %, the dense layers 8 %.

Speed notes (measured in ``benchmarks/bench_model_speed.py``; the fast paths give the
results of :func:`reference_features`, the network written with plain modules, up to
float rounding, and the same gradients):

* inference (:func:`infer`): ``torch.inference_mode``, channels-last 3D inputs, the
  stride-1 stem pool as three pairwise maxima (PyTorch's CPU ``max_pool3d`` took about
  half of the forward time), the residual block's BatchNorms folded into its
  convolutions, and glibc kept from unmapping large buffers
  (:func:`~glue_ssclump.core.device.tune_cpu_allocator`);
* training: the input BatchNorm folded into the stem convolution so that no gradient
  with respect to the one-channel input is computed (:class:`_NormConvFn`; that
  gradient cost more than the rest of the stem's backward), dropout masks drawn from
  16-bit random integers instead of ``bernoulli_`` (5x faster), and channels-last
  3D tensors (set up by :func:`~glue_ssclump.core.training.train`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import resolve_device, tune_cpu_allocator
from .progress import Progress
from .samples import SAMPLE_SIZE

__all__ = [
    "ARCHS",
    "ARCH_VERSION",
    "CONTEXT_ARCH_VERSION",
    "INPUT_SIZE",
    "N_FEATURES",
    "N_CLASSES",
    "SSClumpNet",
    "build_model",
    "count_parameters",
    "count_macs",
    "infer",
    "default_batch_size",
    "prepare_input",
    "reference_features",
]

#: Identifies the layer stack; stored in checkpoints and checked when loading.
ARCH_VERSION = "ss3dclump-ref-1"
#: The same stack fed four channels (sample, context, mask, valid; see core/context.py).
CONTEXT_ARCH_VERSION = "ss3dclump-context-1"
#: Architecture name -> (input channels, arch_version).  'paper' is the reference network.
ARCHS = {"paper": (1, ARCH_VERSION), "context": (4, CONTEXT_ARCH_VERSION)}
#: Side of the cubic input sample in voxels: one candidate sample.
INPUT_SIZE = SAMPLE_SIZE
#: Width of the feature vector clustered by Constrained-KMeans.
N_FEATURES = 256
#: Output classes: 0 = not clump, 1 = clump.
N_CLASSES = 2


class SampleSourceLike(Protocol):
    """What :func:`infer` needs from a :class:`~glue_ssclump.core.samples.SampleSource`."""

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, index: np.ndarray | None = None, progress: Progress | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


def _keras_bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-3, momentum=0.01)


def _like(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format


def _max_pool2_same(x: torch.Tensor) -> torch.Tensor:
    """2^3 max-pool, stride 1, TensorFlow 'same' padding (one voxel at the end of each axis).

    Equal to ``F.max_pool3d(F.pad(x, (0, 1) * 3), 2, stride=1)`` for ``x >= 0`` (zero
    padding is neutral after a ReLU).  When no gradient is needed it is computed as
    three pairwise maxima along d, h and w (PyTorch's CPU ``max_pool3d`` with stride 1
    took about half of the network's inference time); when one is, ``max_pool3d``
    itself, whose channels-last backward is 4x faster than any composite of maxima.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return F.max_pool3d(F.pad(x, (0, 1, 0, 1, 0, 1)), kernel_size=2, stride=1)
    x = F.pad(x, (0, 1, 0, 1, 0, 1))
    for dim in (2, 3, 4):
        n = x.shape[dim] - 1
        x = torch.maximum(x.narrow(dim, 0, n), x.narrow(dim, 1, n))
    return x


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a keep mask drawn from 16-bit random integers.

    Same distribution as ``F.dropout`` up to the keep probability being rounded to a
    multiple of 1/65536 (exact for the reference's 0.5), and about 5x faster on the CPU:
    ``bernoulli_`` draws one double per element, here 64 random bits give four elements.
    Reproducible under ``torch.manual_seed``.
    """
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last_3d)):
        x = x.contiguous()
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    words.random_(-(2**63), 2**63 - 1)
    bits = words.view(torch.int16)[:n]
    threshold = round((1.0 - p) * 65536.0) - 32768
    # lay the mask out with x's own strides (contiguous or channels-last, both dense)
    keep = bits.lt(threshold).as_strided(x.shape, x.stride())
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


def _update_running_stats(bn: nn.BatchNorm3d, mean: torch.Tensor, var: torch.Tensor,
                          count: int) -> None:
    """Running-statistics update of a training-mode BatchNorm, as PyTorch does it."""
    if not bn.track_running_stats or bn.running_mean is None:
        return
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        factor = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None
                  else bn.momentum)
        unbiased = var * (count / max(count - 1, 1))
        bn.running_mean.mul_(1.0 - factor).add_(mean.detach(), alpha=factor)
        bn.running_var.mul_(1.0 - factor).add_(unbiased.detach(), alpha=factor)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A dense 5-D tensor as an ``(N, rest)`` view in its own memory order.

    Reductions over the batch axis of a channels-last 5-D tensor are about 40x faster
    on this 2-D view than ``t.sum(0)`` on the 5-D one.
    """
    if t.is_contiguous(memory_format=torch.channels_last_3d) and not t.is_contiguous():
        return t.permute(0, 2, 3, 4, 1).reshape(t.shape[0], -1)
    return t.contiguous().view(t.shape[0], -1)


def _unrows(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_rows` for one row: ``v`` (K,) -> ``like``'s shape with N = 1."""
    n, c, d, h, w = like.shape
    if like.is_contiguous(memory_format=torch.channels_last_3d) and not like.is_contiguous():
        return v.view(1, d, h, w, c).permute(0, 4, 1, 2, 3)
    return v.view(1, c, d, h, w)


class _NormConvFn(torch.autograd.Function):
    """``conv(pad(scale * x + shift), W) + b`` for an input ``x`` that needs no gradient.

    Computed as ``conv(x, scale W, b) + shift * conv(pad(1), W)`` (the convolution is
    linear; ``conv(pad(1), W)`` is one sample).  The backward gives the gradients of
    ``W``, ``b``, ``scale`` and ``shift`` from one weight-gradient convolution and one
    reduction over the batch, instead of autograd's gradient with respect to the
    one-channel input (160 ms against 24 ms per 128 samples here) or its broadcast
    reductions over channels-last tensors (another 40-70 ms).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                scale: torch.Tensor, shift: torch.Tensor, stride: Any, padding: Any
                ) -> torch.Tensor:
        ones = x.new_ones((1, 1) + tuple(x.shape[2:]))
        edge = F.conv3d(ones, weight, None, stride, padding)
        y = F.conv3d(x, weight * scale, bias, stride, padding)
        _rows(y).add_(_rows(edge.contiguous(memory_format=_like(y))) * shift)
        ctx.save_for_backward(x, weight, scale, shift, edge)
        ctx.conf = (stride, padding)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, weight, scale, shift, edge = ctx.saved_tensors
        stride, padding = ctx.conf
        summed = _unrows(_rows(grad).sum(0), grad)            # (1, C, d, h, w)
        grad_scaled_w = torch.nn.grad.conv3d_weight(x, weight.shape, grad, stride, padding)
        ones = x.new_ones((1, 1) + tuple(x.shape[2:]))
        grad_edge_w = torch.nn.grad.conv3d_weight(ones, weight.shape, summed, stride, padding)
        grad_weight = grad_scaled_w * scale + grad_edge_w * shift
        grad_bias = summed.sum(dim=(0, 2, 3, 4))
        grad_scale = (grad_scaled_w * weight).sum().reshape(1)
        grad_shift = (summed * edge).sum().reshape(1)
        return None, grad_weight, grad_bias, grad_scale, grad_shift, None, None


def _conv_bn_eval(conv: nn.Conv3d, bn: nn.BatchNorm3d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` for an eval-mode BatchNorm folded into the convolution's weights."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.view(-1, 1, 1, 1, 1)
    bias = (conv.bias - bn.running_mean) * scale + bn.bias
    return F.conv3d(x, weight, bias, conv.stride, conv.padding)


class SSClumpNet(nn.Module):
    """SS-3D-Clump classifier for 30^3 candidate samples.

    Parameters
    ----------
    dropout : float
        Dropout rate before the last convolution (reference: 0.5).  Active only in
        training mode.
    in_channels : int
        Input channels: 1 is the paper's network (``arch='paper'``); 4 is
        ``arch='context'`` (the candidate sample plus its surroundings, own mask and
        valid-data mask, :mod:`~glue_ssclump.core.context`).  Only the input BatchNorm
        and the stem convolution differ.

    Notes
    -----
    Shapes for an input ``(N, 1, 30, 30, 30)``:

    ========================================================  ==================
    BatchNorm (input) -> Conv 16, 3^3, s2 -> ReLU              (N, 16, 15^3)
    MaxPool 2^3, s1, 'same'                                   (N, 16, 15^3)
    ResBlock: Conv 32 s2 -> BN -> ReLU -> Conv 32 -> BN,
    skip Conv 32 1^3 s2; add; ReLU                            (N, 32, 8^3)
    Dropout 0.5 -> Conv 64, 3^3, s2 (linear)                  (N, 64, 4^3)
    Flatten (d, h, w, c) -> Dense 512 ReLU -> Dense 256 ReLU  (N, 256) features
    Dense 16 ReLU -> Dense 2                                  (N, 2) logits
    ========================================================  ==================

    The module accepts contiguous (NCDHW) or ``torch.channels_last_3d`` inputs and
    gives the same result for both (up to float rounding).
    """

    def __init__(self, dropout: float = 0.5, in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        names = {c: a for a, (c, _) in ARCHS.items()}
        if self.in_channels not in names:
            raise ValueError(f"in_channels must be one of {sorted(names)}, not {in_channels!r}")
        self.arch = names[self.in_channels]
        self.arch_version = ARCHS[self.arch][1]
        self.input_bn = _keras_bn(self.in_channels)
        if self.in_channels != 1:
            # Fixed affine (batch statistics only): no gradient has to flow through the
            # stem convolution to its input, which made a training step 2.5x slower.
            self.input_bn.weight.requires_grad_(False)
            self.input_bn.bias.requires_grad_(False)
        self.stem_conv = nn.Conv3d(self.in_channels, 16, 3, stride=2, padding=1)
        self.res_conv1 = nn.Conv3d(16, 32, 3, stride=2, padding=1)
        self.res_bn1 = _keras_bn(32)
        self.res_conv2 = nn.Conv3d(32, 32, 3, stride=1, padding=1)
        self.res_bn2 = _keras_bn(32)
        self.res_skip = nn.Conv3d(16, 32, 1, stride=2)
        self.dropout = nn.Dropout(dropout)
        self.conv3 = nn.Conv3d(32, 64, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4 * 4, 512)
        self.fc2 = nn.Linear(512, N_FEATURES)
        self.fc3 = nn.Linear(N_FEATURES, 16)
        self.fc_out = nn.Linear(16, N_CLASSES)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras-style initialisation: Glorot-uniform weights, zero biases, BN (1, 0)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                m.reset_parameters()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        """``stem_conv(input_bn(x))``, without a gradient through the input when training.

        The input BatchNorm is one affine map ``scale * x + shift`` and the convolution
        is linear, so ``conv(pad(scale x + shift)) = conv(x, scale W) + shift conv(pad 1, W)``.
        Written this way autograd reaches the BatchNorm's weight and bias through
        ``scale`` and ``shift`` and never computes the gradient with respect to the
        one-channel input, which cost more than the whole rest of the stem's backward
        (160 ms against 24 ms per 128 samples here).  Statistics, running averages and
        results are the same as ``stem_conv(input_bn(x))`` up to float rounding.
        """
        bn, conv = self.input_bn, self.stem_conv
        # No parameter gradient needed, or one w.r.t. the input too (e.g. saliency maps),
        # or several channels (the fold below is written for one): the plain modules.
        if not (torch.is_grad_enabled() and bn.weight.requires_grad and bn.training) \
                or x.requires_grad or self.in_channels != 1:
            return conv(bn(x))
        # one-channel batch statistics: sum and sum of squares (BLAS dot) are 10x
        # faster here than var_mean's Welford pass; the inputs are in [0, 1]
        flat = x.reshape(-1)
        count = flat.numel()
        mean = flat.sum() / count
        var = torch.clamp(torch.dot(flat, flat) / count - mean * mean, min=0.0)
        mean, var = mean.reshape(1), var.reshape(1)
        _update_running_stats(bn, mean, var, count)
        scale = bn.weight * torch.rsqrt(var + bn.eps)
        shift = bn.bias - mean * scale
        return _NormConvFn.apply(x, conv.weight, conv.bias, scale, shift, conv.stride,
                                 conv.padding)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 256-d feature (post-ReLU output of the Dense-256 layer).

        Parameters
        ----------
        x : torch.Tensor
            ``(N, in_channels, 30, 30, 30)`` float32 samples.

        Returns
        -------
        torch.Tensor
            ``(N, 256)``.
        """
        c = self.in_channels
        if x.dim() != 5 or tuple(x.shape[1:]) != (c, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"SSClumpNet expects input of shape (N, {c}, {INPUT_SIZE}, {INPUT_SIZE}, "
                f"{INPUT_SIZE}), got {tuple(x.shape)}"
            )
        x = F.relu(self._stem(x))
        x = _max_pool2_same(x)
        # Fold only BatchNorms that are themselves in eval mode: BatchNorm recalibration
        # runs them in training mode inside an eval-mode model.
        if self.res_bn1.training or self.res_bn2.training:
            y = F.relu(self.res_bn1(self.res_conv1(x)))
            y = self.res_bn2(self.res_conv2(y))
        else:
            y = F.relu(_conv_bn_eval(self.res_conv1, self.res_bn1, x))
            y = _conv_bn_eval(self.res_conv2, self.res_bn2, y)
        x = F.relu(y + self.res_skip(x))
        x = self.conv3(_dropout(x, self.dropout.p, self.training))
        # Flatten in (d, h, w, c) order as Keras does; a free view for channels_last input.
        x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1)
        x = F.relu(self.fc1(x))
        return F.relu(self.fc2(x))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        """Classifier head: features ``(N, 256)`` -> logits ``(N, 2)``."""
        return self.fc_out(F.relu(self.fc3(f)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 2)`` for samples ``(N, 1, 30, 30, 30)``; class 1 = clump."""
        return self.head(self.features(x))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of class 1 (clump), shape ``(N,)``.

        Uses the module's current mode (call ``model.eval()`` first for inference; the
        batched, no-grad path is :func:`infer`).
        """
        return torch.softmax(self.forward(x), dim=1)[:, 1]


def reference_features(model: SSClumpNet, x: torch.Tensor) -> torch.Tensor:
    """:meth:`SSClumpNet.features` written with the plain modules, no fast paths.

    BatchNorm modules (never folded), PyTorch's ``max_pool3d`` and ``nn.Dropout``: the
    straightforward eager network that the tests and ``benchmarks/bench_model_speed.py``
    hold the fast paths against (same results up to float rounding; same gradients).
    """
    x = F.relu(model.stem_conv(model.input_bn(x)))
    x = F.max_pool3d(F.pad(x, (0, 1, 0, 1, 0, 1)), kernel_size=2, stride=1)
    y = F.relu(model.res_bn1(model.res_conv1(x)))
    y = model.res_bn2(model.res_conv2(y))
    x = F.relu(y + model.res_skip(x))
    x = model.conv3(model.dropout(x))
    x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1)
    return F.relu(model.fc2(F.relu(model.fc1(x))))


def build_model(arch: str = "paper", **kw: Any) -> SSClumpNet:
    """Create an :class:`SSClumpNet` of architecture ``arch`` ('paper' or 'context').

    Other keyword arguments go to its constructor.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, not {arch!r}")
    return SSClumpNet(in_channels=ARCHS[arch][0], **kw)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; 2,331,156 for :class:`SSClumpNet`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, per_layer: bool = False) -> int | dict[str, int]:
    """Multiply-accumulate operations per sample of the convolutions and dense layers.

    BatchNorm, ReLU, pooling and additions are not counted (they are memory-bound and
    add < 1 % of the arithmetic).  Measured with forward hooks on a training-mode copy
    of the model fed two dummy samples, so it follows the actual layer shapes; the
    model and torch's random state are left as they were.

    Parameters
    ----------
    model : nn.Module
        An :class:`SSClumpNet` (or any module taking ``(1, 1, 30, 30, 30)``).
    per_layer : bool
        Return ``{layer name: MACs}`` (in execution order) instead of the total.

    Returns
    -------
    int or dict
        28,725,104 for :class:`SSClumpNet`.
    """
    counts: dict[str, int] = {}

    def hook(name: str):
        def fn(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if isinstance(mod, nn.Conv3d):
                k = int(np.prod(mod.kernel_size)) * mod.in_channels // mod.groups
                counts[name] = out[0].numel() * k
            else:
                counts[name] = mod.in_features * mod.out_features
        return fn

    # A training-mode copy: in eval mode the BatchNorms are folded into the
    # convolutions (which then bypass their modules' hooks); the copy keeps the
    # caller's running statistics untouched.
    probe = copy.deepcopy(model).train()
    for name, mod in probe.named_modules():
        if isinstance(mod, (nn.Conv3d, nn.Linear)):
            mod.register_forward_hook(hook(name))
    param = next(probe.parameters())
    # fork_rng: the copy's dropout must not move the caller's random stream.
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        probe(torch.zeros(2, getattr(probe, "in_channels", 1), INPUT_SIZE, INPUT_SIZE,
                          INPUT_SIZE, device=param.device, dtype=param.dtype))
    return dict(counts) if per_layer else int(sum(counts.values()))


# -- inference ------------------------------------------------------------------------

#: Batch size used by :func:`infer` when none is given (see benchmarks/bench_model_speed.py).
DEFAULT_CPU_BATCH = 256
DEFAULT_CUDA_BATCH = 1024


def default_batch_size(device: torch.device) -> int:
    """Inference batch size that measured best on ``device``'s type."""
    return DEFAULT_CUDA_BATCH if device.type == "cuda" else DEFAULT_CPU_BATCH


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - SSClumpNet always has parameters
        return torch.device("cpu")


def prepare_input(batch: np.ndarray | torch.Tensor, dev: torch.device,
                  channels_last: bool | None = None) -> torch.Tensor:
    """A batch of samples as a float32 tensor on ``dev``, ready for :class:`SSClumpNet`.

    Parameters
    ----------
    batch : ndarray or Tensor
        ``(N, 1, 30, 30, 30)`` samples (float16 or float32).
    dev : torch.device
        Target device (pinned-memory copy on CUDA).
    channels_last : bool, optional
        Lay the tensor out as ``torch.channels_last_3d``; default: on the CPU only.

    Returns
    -------
    torch.Tensor
    """
    if channels_last is None:
        channels_last = dev.type == "cpu"
    x = torch.as_tensor(batch)
    if x.dtype != torch.float32:
        x = x.float()
    if dev.type == "cuda":
        x = x.pin_memory().to(dev, non_blocking=True) if x.device.type == "cpu" else x.to(dev)
    else:
        x = x.to(dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _array_batches(array: np.ndarray, batch_size: int
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n = len(array)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        yield np.arange(start, stop), array[start:stop]


def infer(
    model: SSClumpNet,
    source_or_array: np.ndarray | torch.Tensor | SampleSourceLike,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    channels_last: bool | None = None,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clump probabilities and 256-d features for many samples, batched and gradient-free.

    Parameters
    ----------
    model : SSClumpNet
        The network.  It is evaluated in eval mode (no dropout, BatchNorm running
        statistics) and its previous mode is restored afterwards.
    source_or_array : ndarray, Tensor or SampleSource
        Either samples ``(N, 1, 30, 30, 30)`` or an object with ``__len__`` and
        ``batches(batch_size, index=None, progress=None)`` yielding
        ``(index_array, batch)`` pairs, where ``index_array`` holds the positions
        (0..N-1) of the batch's samples.
    batch_size : int, optional
        Samples per forward pass; default :func:`default_batch_size` for the device.
    device : str or torch.device, optional
        Where to run.  None: where the model's parameters are.  Otherwise the model is
        moved there (in place) first.
    progress : Progress, optional
        Updated after every batch; cancelling it raises
        :class:`~glue_ssclump.core.progress.Cancelled` at the next batch.
    channels_last : bool, optional
        Feed the network ``torch.channels_last_3d`` tensors and lay its weights out the
        same way, in place, as :func:`~glue_ssclump.core.training.train` does (default:
        on the CPU, where oneDNN's channels-last 3D convolutions are faster; off on
        CUDA).  The result is the same up to float rounding.
    num_threads : int, optional
        CPU threads for this call (restored afterwards); None keeps torch's setting.
        On a machine whose cores are busy with other processes, 1 thread can be
        faster than 2 (OpenMP barriers wait for descheduled threads).

    Notes
    -----
    On the CPU this calls :func:`~glue_ssclump.core.device.tune_cpu_allocator` once
    per process (large freed buffers are kept for reuse instead of being unmapped;
    2-3x faster on a small VM).  ``benchmarks/bench_model_speed.py`` measures each of
    these choices.

    Returns
    -------
    probabilities : ndarray
        ``(N,)`` float32, probability of class 1 (clump), in source order.
    features : ndarray
        ``(N, 256)`` float32, the post-ReLU Dense-256 output, in source order.
    """
    dev = _model_device(model) if device is None else resolve_device(device)
    model.to(dev)
    if batch_size is None:
        batch_size = default_batch_size(dev)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if channels_last is None:
        channels_last = dev.type == "cpu"
    if dev.type == "cpu":
        tune_cpu_allocator()
    if channels_last:
        # Channels-last inputs against contiguous weights: oneDNN reorders the weights
        # on every call, 9-15% of infer()'s time (benchmarks/bench_model_speed.py).
        model.to(memory_format=torch.channels_last_3d)

    if isinstance(source_or_array, (np.ndarray, torch.Tensor)):
        array = source_or_array
        c = getattr(model, "in_channels", 1)
        if array.ndim != 5 or tuple(array.shape[1:]) != (c, INPUT_SIZE, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"infer expects samples of shape (N, {c}, {INPUT_SIZE}, {INPUT_SIZE}, "
                f"{INPUT_SIZE}), got {tuple(array.shape)}"
            )
        n = len(array)
        batches: Iterator[tuple[np.ndarray, Any]] = _array_batches(array, batch_size)
    else:
        n = len(source_or_array)
        batches = source_or_array.batches(batch_size)

    probs = np.empty(n, dtype=np.float32)
    feats = np.empty((n, N_FEATURES), dtype=np.float32)
    if progress is not None:
        progress.update(0.0, "scoring candidates")
    was_training = model.training
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    model.eval()
    done = 0
    try:
        with torch.inference_mode():
            for index, batch in batches:
                x = prepare_input(batch, dev, channels_last)
                f = model.features(x)
                p = torch.softmax(model.head(f), dim=1)[:, 1]
                index = np.asarray(index)
                feats[index] = f.float().cpu().numpy()
                probs[index] = p.float().cpu().numpy()
                done += len(index)
                if progress is not None:
                    progress.update(done / max(n, 1), f"scored {done}/{n} candidates")
    finally:
        model.train(was_training)
        torch.set_num_threads(old_threads)
    if done != n:
        raise RuntimeError(f"sample source yielded {done} samples but reports {n}")
    return probs, feats
