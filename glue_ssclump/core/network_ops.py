"""Fast paths of :class:`~glue_ssclump.core.network.SSClumpNet`, with the same results.

Each function here gives the result of the plain modules
(:func:`~glue_ssclump.core.network.reference_features`) up to float rounding, and the
same gradients; ``benchmarks/bench_model_speed.py`` measures each choice against it.

* inference: the stride-1 stem pool as three pairwise maxima (PyTorch's CPU
  ``max_pool3d`` with stride 1 is slow), and the residual block's BatchNorms folded
  into its convolutions (:func:`_conv_bn_eval`);
* training: the input BatchNorm folded into the stem convolution so that no gradient
  with respect to the one-channel input is computed (:class:`_NormConvFn`; that
  gradient cost more than the rest of the stem's backward), and dropout masks drawn
  from 16-bit random integers instead of ``bernoulli_`` (:func:`_dropout`), and
  channels-last 3D tensors (set up by :func:`~glue_ssclump.core.training.train`),
  which the batch reductions of :func:`_rows` keep cheap.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


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
    is slow); when one is, ``max_pool3d`` itself, whose channels-last backward is
    faster than any composite of maxima.
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
    multiple of 1/65536 (exact for the reference's 0.5), and faster on the CPU:
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

    Reductions over the batch axis of a channels-last 5-D tensor are much faster on
    this 2-D view than ``t.sum(0)`` on the 5-D one.
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
    one-channel input (which costs more than the weight gradient) or its broadcast
    reductions over channels-last tensors.
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
