"""The SS-3D-Clump network (Luo et al. 2024, A&A 683, A104).

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

The training and inference fast paths the network uses are in
:mod:`~glue_ssclump.core.network_ops`; batched inference is
:func:`~glue_ssclump.core.inference.infer`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .network_ops import (
    _conv_bn_eval,
    _dropout,
    _keras_bn,
    _max_pool2_same,
    _NormConvFn,
    _update_running_stats,
)
from .sample_build import SAMPLE_SIZE

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
            # stem convolution to its input, the costliest part of a training step.
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
        one-channel input, which costs more than the whole rest of the stem's backward.
        Statistics, running averages and results are the same as
        ``stem_conv(input_bn(x))`` up to float rounding.
        """
        bn, conv = self.input_bn, self.stem_conv
        # No parameter gradient needed, or one w.r.t. the input too (e.g. saliency maps),
        # or several channels (the fold below is written for one): the plain modules.
        if not (torch.is_grad_enabled() and bn.weight.requires_grad and bn.training) \
                or x.requires_grad or self.in_channels != 1:
            return conv(bn(x))
        # one-channel batch statistics: sum and sum of squares (BLAS dot) are faster
        # than var_mean's Welford pass, and the inputs in [0, 1] keep them accurate
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

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 256-d features and the logits ``(N, 2)`` in one pass (what :func:`infer`
        asks of every model, the ensemble verifier's included)."""
        f = self.features(x)
        return f, self.head(f)

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
