"""SS-3D-Clump semi-supervised training loop (METHOD.md §4; Luo et al. 2024, Sect. 3.3, Fig. 5).

One epoch, as in the authors' reference code:

1. the 256-d features of every candidate (seeds included) from the current network,
   in inference mode;
2. Constrained-KMeans on them with the labelled seeds pinning the clusters, so the
   cluster id *is* the class id (1 = clump) and never swaps;
3. per cluster, keep the samples nearest the centroid (``select_ratio``, about 40 %)
   plus every seed;
4. train a few passes on those with their pseudo-labels, class-balanced cross-entropy
   on the logits;
5. recompute the features and the clustering with the trained network and log the
   stability of the pseudo-labels (NMI, number reassigned) and, when a labelled
   held-out set is given, precision / recall / F1 / accuracy / ROC AUC of the
   classifier and its probability histograms (the paper's Fig. D.1).

Step 5's clustering is the next epoch's step 2, so each epoch costs one pass of
inference over all candidates plus the training passes; the starting model costs one
extra inference pass.  ``nmi_prev`` of epoch *e* compares the pseudo-labels the epoch
trained on with those its trained network gives (the reference's ``NMI_t_t1``).

Deviations from the reference code, on purpose:

* a proper cross-entropy on logits (the reference applies a 'from logits' binary
  cross-entropy to softmax outputs);
* CPU-sized default batches (128, the reference uses 1000: see :class:`TrainConfig`);
* in a batch that holds a single class that class gets weight 1 (the reference's
  per-batch weights ``N_batch / (2 N_class)`` divide by zero there);
* after the training passes the BatchNorm running statistics are recomputed over the
  epoch's training samples (``recalibrate_bn``).  With Keras' running-average momentum
  (0.99) and the few steps an epoch has on a few hundred candidates, inference-mode
  outputs otherwise lag far behind the weights, and the probabilities stay undecided
  however well the network has learnt.

Reproducibility: for a fixed ``seed`` (and thread count) two CPU runs give identical
histories and weights; the caller's torch RNG state is left untouched.

This module holds the loop (:func:`train`) and its starting points
(:func:`load_initial_model`); the settings are :mod:`~glue_ssclump.core.train_config`,
the per-epoch records and logs :mod:`~glue_ssclump.core.train_records`, the input checks
:mod:`~glue_ssclump.core.train_checks` and the steps of an epoch
:mod:`~glue_ssclump.core.train_steps`.  Every public name is importable from here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load_checkpoint
from .ckmeans import constrained_kmeans, select_confident
from .device import resolve_device, tune_cpu_allocator
from .ensemble import EnsembleNet
from .inference import infer
from .metrics import nmi
from .network import build_model
from .progress import Cancelled, Progress, ensure_progress
from .sample_source import SampleSource
from .train_checks import _check_heldout, _check_seeds
from .train_config import DEFAULT_LR, TrainConfig
from .train_records import (
    HIST_BINS,
    LOG_COLUMNS,
    EpochRecord,
    TrainResult,
    _class_sizes,
    _heldout_scores,
    _histograms,
    history_to_table,
    write_history_csv,
)
from .train_steps import (
    _diverged,
    _make_optimizer,
    _recalibrate_batchnorm,
    _snapshot,
    _torch_session,
    _train_passes,
    balanced_cross_entropy,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_CONTEXT_CHECKPOINT",
    "DEFAULT_LR",
    "HIST_BINS",
    "LOG_COLUMNS",
    "EpochRecord",
    "TrainConfig",
    "TrainResult",
    "balanced_cross_entropy",
    "history_to_table",
    "load_initial_model",
    "train",
    "write_history_csv",
]

#: The shipped starting point for fine-tuning (made by ``ssclump train-default``).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "ss3dclump_default.pt"
#: The shipped starting point of ``arch='context'`` (``pretrain.train_context_default``).
DEFAULT_CONTEXT_CHECKPOINT = DEFAULT_CHECKPOINT.with_name("ss3dclump_context.pt")

#: Most samples the BatchNorm recalibration averages over (a bound on its cost).
_BN_RECAL_MAX = 2048


def train(
    samples: SampleSource,
    seed_labels: np.ndarray,
    config: TrainConfig | None = None,
    model: torch.nn.Module | None = None,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train SS-3D-Clump semi-supervised on the candidates of ``samples``.

    Parameters
    ----------
    samples : SampleSource
        All candidates (seeds, unlabelled and held-out alike); read batch by batch.
    seed_labels : ndarray
        ``(len(samples),)`` ints: -1 unlabelled, 0 not clump, 1 clump.  Both classes
        need at least one seed (fewer than 5 in a class warns).
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    model : torch.nn.Module, optional
        Starting network, trained in place (fine-tuning; see
        :func:`load_initial_model`).  Default: a new ``build_model()`` seeded by
        ``config.seed``.
    heldout : (indices, labels), optional
        Labelled candidates to score after every epoch; they take part in the
        clustering as unlabelled candidates but must not be seeds (refused).
    progress : Progress, optional
        Updated per batch; cancelling stops at the next batch.
    on_epoch : callable, optional
        Called with each completed epoch's :class:`EpochRecord`.

    Returns
    -------
    TrainResult
        On cancellation ``cancelled`` is True and ``model`` holds the weights of the last
        completed epoch (the starting weights when none completed); nothing is raised.

    Raises
    ------
    ValueError
        Malformed seeds, a class without seeds, or held-out candidates among the seeds.
    FloatingPointError
        The loss or the features became NaN / infinite (learning rate too high; the
        model is first reset to the last completed epoch), or the starting model's
        outputs already are.
    """
    config = config if config is not None else TrainConfig()
    n = len(samples)
    seeds = _check_seeds(seed_labels, n)
    held = _check_heldout(heldout, seeds)
    progress = ensure_progress(progress)
    device = torch.device(resolve_device(config.device))
    seed_mask = seeds >= 0

    # Share of the bar: one inference pass ~ 1 unit per sample, a training step ~ 3.
    w_inf = 1.0
    w_train = (3.0 * config.passes + float(config.recalibrate_bn)) * config.select_ratio
    w_epoch = w_inf + w_train
    total = w_inf + config.epochs * w_epoch

    history: list[EpochRecord] = []
    initial: EpochRecord | None = None
    pseudo: np.ndarray | None = None

    with _torch_session(config, device):
        if model is None:
            model = build_model()
            # Same dropout stream whether the model was built here or passed in.
            torch.manual_seed(config.seed)
        model.to(device)
        if device.type == "cpu":
            # oneDNN's channels-last 3D kernels give the faster training steps
            # (benchmarks/bench_model_speed.py); inputs follow in prepare_input
            model.to(memory_format=torch.channels_last_3d)
            tune_cpu_allocator()
        optimizer = _make_optimizer(model, config)
        rng = np.random.default_rng(config.seed)
        snapshot = _snapshot(model)
        try:
            t0 = time.perf_counter()
            model.eval()
            probs, feats = infer(model, samples, batch_size=config.infer_batch_size,
                                 device=device,
                                 progress=progress.span(0.0, w_inf / total,
                                                        "features of the starting model"))
            if not (np.isfinite(feats).all() and np.isfinite(probs).all()):
                raise FloatingPointError(
                    "the starting model gives NaN / infinite outputs: its weights are "
                    "damaged; start from another checkpoint or init='scratch'")
            clusters = constrained_kmeans(np.asarray(feats), seeds, n_clusters=2)
            pseudo = np.asarray(clusters.labels).astype(np.int64)
            initial = EpochRecord(
                epoch=0, loss=float("nan"), n_selected=0, nmi_prev=float("nan"),
                n_reassigned=0, cluster_sizes=_class_sizes(pseudo), selected_sizes=(0, 0),
                seconds=time.perf_counter() - t0,
                **_heldout_scores(np.asarray(probs), held),
                **_histograms(np.asarray(probs), held))

            for epoch in range(1, config.epochs + 1):
                t0 = time.perf_counter()
                lo = (w_inf + (epoch - 1) * w_epoch) / total
                hi = (w_inf + epoch * w_epoch) / total
                span = progress.span(lo, hi)
                label = f"epoch {epoch}/{config.epochs}"

                selected = np.asarray(select_confident(clusters, ratio=config.select_ratio),
                                      dtype=bool) | seed_mask
                index = np.flatnonzero(selected)
                f_train = w_train / w_epoch
                f_passes = f_train * (1.0 - config.recalibrate_bn / (3 * config.passes + 1))
                loss = _train_passes(model, optimizer, samples, index, pseudo, config, rng,
                                     device, span.span(0.0, f_passes), label)
                if not math.isfinite(loss):
                    _diverged(model, snapshot, epoch, config)
                if config.recalibrate_bn:
                    subset = rng.permutation(index)[:_BN_RECAL_MAX]
                    _recalibrate_batchnorm(model, samples, subset, config.batch_size, device,
                                           span.span(f_passes, f_train), label)

                model.eval()
                probs, feats = infer(model, samples, batch_size=config.infer_batch_size,
                                     device=device,
                                     progress=span.span(f_train, 1.0,
                                                        f"{label}: features"))
                probs = np.asarray(probs)
                if not (np.isfinite(feats).all() and np.isfinite(probs).all()):
                    _diverged(model, snapshot, epoch, config)
                new_clusters = constrained_kmeans(np.asarray(feats), seeds, n_clusters=2)
                new_pseudo = np.asarray(new_clusters.labels).astype(np.int64)
                record = EpochRecord(
                    epoch=epoch, loss=loss, n_selected=int(index.size),
                    nmi_prev=float(nmi(pseudo, new_pseudo)),
                    n_reassigned=int(np.count_nonzero(pseudo != new_pseudo)),
                    cluster_sizes=_class_sizes(pseudo),
                    selected_sizes=_class_sizes(pseudo[index]),
                    seconds=time.perf_counter() - t0,
                    **_heldout_scores(probs, held), **_histograms(probs, held))
                clusters, pseudo = new_clusters, new_pseudo
                history.append(record)
                snapshot = _snapshot(model)
                if on_epoch is not None:
                    on_epoch(record)
        except Cancelled:
            model.load_state_dict(snapshot)
            model.eval()
            return TrainResult(model=model, history=history, config=config,
                               completed_epochs=len(history), cancelled=True,
                               initial=initial, pseudo_labels=pseudo)
        model.eval()
    progress.update(1.0, "training done")
    return TrainResult(model=model, history=history, config=config,
                       completed_epochs=len(history), cancelled=False, initial=initial,
                       pseudo_labels=pseudo)


def load_initial_model(init: str | Path = "default",
                       device: str | torch.device = "auto",
                       arch: str = "paper") -> torch.nn.Module:
    """The network a training run starts from.

    Parameters
    ----------
    init : {'default', 'scratch'} or path
        'default': the shipped checkpoint :data:`DEFAULT_CHECKPOINT` (fine-tuning, the
        normal path); 'scratch': new random weights (``build_model()``, seeded by the
        caller's torch RNG); anything else: a checkpoint file.
    device : str or torch.device
        Where the model is placed ('auto', 'cpu', 'cuda').
    arch : {'paper', 'context', 'ensemble'}
        Architecture of 'default' (:data:`DEFAULT_CHECKPOINT`,
        :data:`DEFAULT_CONTEXT_CHECKPOINT`, or both as an
        :class:`~glue_ssclump.core.ensemble.EnsembleNet`) and 'scratch' ('paper' or
        'context' only: the ensemble is made of pretrained networks); a file brings its
        own.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    CheckpointError
        The default checkpoint is missing (the message names ``ssclump
        train-default``), or the file is missing or unusable.
    """
    dev = resolve_device(device)
    if isinstance(init, str) and init == "scratch":
        if arch == "ensemble":
            raise ValueError("the ensemble verifier is made of the two shipped pretrained "
                             "networks and cannot start from scratch; use arch='paper' or "
                             "'context' with init='scratch', or init='default'")
        return build_model(arch).to(dev)
    if isinstance(init, str) and init == "default" and arch == "ensemble":
        return EnsembleNet(load_initial_model("default", dev, "context"),
                           load_initial_model("default", dev, "paper")).to(dev).eval()
    if isinstance(init, str) and init == "default":
        path = DEFAULT_CONTEXT_CHECKPOINT if arch == "context" else DEFAULT_CHECKPOINT
        if not path.is_file():
            raise CheckpointError(
                f"the default SS-3D-Clump checkpoint is missing ({path}). Create it with "
                f"`ssclump train-default`, or start from init='scratch' or a checkpoint "
                f"file.")
    else:
        path = Path(init)
    model, _ = load_checkpoint(path, dev)
    return model.to(dev)
