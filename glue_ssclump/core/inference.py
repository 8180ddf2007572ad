"""Batched, gradient-free inference: clump probabilities and features (:func:`infer`).

Why it is fast on the CPU (``benchmarks/bench_model_speed.py`` measures each choice):
``torch.inference_mode``, channels-last 3D inputs and weights, the network's
inference fast paths (:mod:`~glue_ssclump.core.network_ops`), and glibc kept from
unmapping large buffers (:func:`~glue_ssclump.core.device.tune_cpu_allocator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from .device import resolve_device, tune_cpu_allocator
from .network import INPUT_SIZE, N_FEATURES, SSClumpNet
from .progress import Progress

__all__ = [
    "DEFAULT_CPU_BATCH",
    "DEFAULT_CUDA_BATCH",
    "SampleSourceLike",
    "default_batch_size",
    "infer",
    "prepare_input",
]


class SampleSourceLike(Protocol):
    """What :func:`infer` needs from a :class:`~glue_ssclump.core.samples.SampleSource`."""

    def __len__(self) -> int: ...

    def batches(
        self, batch_size: int, index: np.ndarray | None = None, progress: Progress | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


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
    per process (large freed buffers are kept for reuse instead of being unmapped).
    ``benchmarks/bench_model_speed.py`` measures each of these choices.

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
        # Channels-last inputs against contiguous weights: oneDNN would reorder the
        # weights on every call (benchmarks/bench_model_speed.py measures the cost).
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
                f, logits = model.features_and_logits(x)
                p = torch.softmax(logits, dim=1)[:, 1]
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
