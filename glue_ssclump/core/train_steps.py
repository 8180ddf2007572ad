"""The pieces one training epoch is made of, below :func:`~glue_ssclump.core.training.train`.

Torch's global state for a run (:func:`_torch_session`), the optimiser, the loss
(:func:`balanced_cross_entropy`), the shuffled training passes, the BatchNorm
recalibration and the reset after a divergence.  :mod:`~glue_ssclump.core.pretrain`
reuses them for the shipped models.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import closing, contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from .inference import prepare_input
from .progress import Progress
from .sample_source import SampleSource
from .train_config import TrainConfig

__all__ = ["balanced_cross_entropy"]


@contextmanager
def _torch_session(config: TrainConfig, device: torch.device) -> Iterator[None]:
    """Seed torch without disturbing the caller's RNG; set and restore global flags.

    CPU training is reproducible as it is (its kernels are deterministic for a fixed
    thread count).  On CUDA, ``deterministic`` asks torch for deterministic kernels,
    with a warning where a layer has none (best effort: cuBLAS also needs
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` set before the process starts).  It is not
    requested on the CPU because the first call imports torch's compiler stack
    (seconds).
    """
    prev_threads = torch.get_num_threads()
    cuda = device.type == "cuda"
    set_det = config.deterministic and cuda
    if set_det:
        prev_det = torch.are_deterministic_algorithms_enabled()
        prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[device.index or 0] if cuda else []):
        try:
            if config.num_threads is not None:
                torch.set_num_threads(int(config.num_threads))
            if set_det:
                torch.use_deterministic_algorithms(True, warn_only=True)
            torch.manual_seed(config.seed)
            yield
        finally:
            if set_det:
                torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


def _make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())


def balanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                           balanced: bool = True) -> torch.Tensor:
    """Cross-entropy on logits where each class present carries an equal share.

    Each sample of class *c* is weighted ``N_batch / (k N_c)`` with *k* the number of
    classes present in the batch (the reference's ``N_batch / (2 N_c)`` when both are),
    and the weighted losses are averaged over the batch.

    Parameters
    ----------
    logits : Tensor
        ``(N, 2)`` network outputs before softmax.
    target : Tensor
        ``(N,)`` int64 class ids.
    balanced : bool
        False gives the plain mean cross-entropy.

    Returns
    -------
    Tensor
        Scalar loss.
    """
    loss = F.cross_entropy(logits, target, reduction="none")
    if not balanced:
        return loss.mean()
    counts = torch.bincount(target, minlength=logits.shape[1]).to(loss.dtype)
    present = (counts > 0).sum()
    weight = torch.where(counts > 0, target.numel() / (present * counts.clamp(min=1)),
                         torch.zeros_like(counts))
    return (loss * weight[target]).mean()


def _recalibrate_batchnorm(model: torch.nn.Module, samples: SampleSource,
                           index: np.ndarray, batch_size: int, device: torch.device,
                           progress: Progress, label: str) -> None:
    """Replace BatchNorm running statistics by their average over ``samples[index]``.

    Only the BatchNorm layers run in training mode (dropout stays off), batches of the
    training size are used so the statistics match what training normalised with.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or index.size == 0:
        return
    momenta = [m.momentum for m in norms]
    n_batches = math.ceil(index.size / batch_size)
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
            m.train()
        progress.update(0.0, f"{label}: BatchNorm statistics")
        with torch.no_grad(), closing(samples.batches(batch_size, index=index)) as batches:
            for k, (_, batch) in enumerate(batches):
                model.features(prepare_input(batch, device))
                progress.update((k + 1) / n_batches)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()


def _train_passes(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  samples: SampleSource, index: np.ndarray, targets: np.ndarray,
                  config: TrainConfig, rng: np.random.Generator, device: torch.device,
                  progress: Progress, label: str) -> float:
    """Train ``config.passes`` shuffled passes over ``samples[index]``; mean loss."""
    model.train()
    per_pass = math.ceil(index.size / config.batch_size)
    total = config.passes * per_pass
    done = 0
    loss_sum = 0.0
    count = 0
    progress.update(0.0, f"{label}: training")
    for p in range(config.passes):
        order = rng.permutation(index)
        with closing(samples.batches(config.batch_size, index=order)) as batches:
            for batch_index, batch in batches:
                x = prepare_input(batch, device)
                y = torch.as_tensor(targets[np.asarray(batch_index)], dtype=torch.int64,
                                    device=device)
                logits = model.head(model.features(x))
                loss = balanced_cross_entropy(logits, y, config.class_balanced)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * y.shape[0]
                count += y.shape[0]
                done += 1
                progress.update(done / total, f"{label}: training pass {p + 1}/{config.passes}")
    return loss_sum / max(count, 1)


def _diverged(model: torch.nn.Module, snapshot: dict[str, torch.Tensor], epoch: int,
              config: TrainConfig) -> None:
    model.load_state_dict(snapshot)
    model.eval()
    raise FloatingPointError(
        f"training diverged in epoch {epoch} (non-finite loss or features); the model was "
        f"reset to the end of epoch {epoch - 1}. Lower the learning rate (lr={config.lr:g}, "
        f"optimizer {config.optimizer!r}) and train again.")
