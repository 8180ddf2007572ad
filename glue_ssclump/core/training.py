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
  outputs otherwise lag far behind the weights: on a 40-candidate synthetic set every
  probability stayed within 0.45-0.5 after 3 epochs without it; with it most were
  below 0.1 or above 0.85 and the held-out F1 was 0.97-1.0.

Reproducibility: for a fixed ``seed`` (and thread count) two CPU runs give identical
histories and weights; the caller's torch RNG state is left untouched.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from astropy.table import Table

from .checkpoint import CheckpointError, load_checkpoint
from .ckmeans import constrained_kmeans, select_confident
from .device import resolve_device, tune_cpu_allocator
from .metrics import binary_report, nmi
from .model import build_model, infer, prepare_input
from .progress import Cancelled, Progress, ensure_progress
from .samples import SampleSource
from .seeds import MIN_SEEDS

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_LR",
    "HIST_BINS",
    "LOG_COLUMNS",
    "EpochRecord",
    "TrainConfig",
    "TrainResult",
    "history_to_table",
    "load_initial_model",
    "train",
    "write_history_csv",
]

#: The shipped starting point for fine-tuning (made by ``ssclump train-default``).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "ss3dclump_default.pt"
#: The shipped starting point of ``arch='context'`` (``pretrain.train_context_default``).
DEFAULT_CONTEXT_CHECKPOINT = DEFAULT_CHECKPOINT.with_name("ss3dclump_context.pt")

#: Learning rate used when :attr:`TrainConfig.lr` is left at ``None``.
DEFAULT_LR = {"sgd": 0.005, "adam": 1e-3}

#: Number of equal bins over [0, 1] of the logged probability histograms.
HIST_BINS = 20

#: Columns of ``training_log.csv`` (:func:`history_to_table`), in order.
LOG_COLUMNS = ("epoch", "loss", "n_selected", "nmi_prev", "n_reassigned", "precision",
               "recall", "f1", "accuracy", "auc", "seconds")

_CLASS_NAMES = {0: "not clump (0)", 1: "clump (1)"}
_BN_RECAL_MAX = 2048
# EpochRecord field <- metrics.binary_report key
_REPORT_KEYS = {"precision": "P", "recall": "R", "f1": "F1", "accuracy": "Acc", "auc": "AUC"}


@dataclass
class TrainConfig:
    """Settings of :func:`train`; stored in checkpoint metadata via :meth:`to_dict`.

    Parameters
    ----------
    epochs : int
        Clustering / training rounds (reference runs: 20-70; fine-tuning needs fewer).
    passes : int
        Training passes over the selected samples per epoch (reference: 5).
    batch_size : int
        Training batch.  The reference uses 1000 on a GPU; 128 keeps a CPU step short
        (about 0.2 GB of activations) while a batch still holds both classes.
    infer_batch_size : int
        Batch of the feature passes (no gradients, so it can be larger).
    optimizer : {'sgd', 'adam'}
        'sgd' is the reference (plain SGD).
    lr : float or None
        Learning rate; ``None`` takes :data:`DEFAULT_LR` (SGD 0.005, the reference's
        value; Adam 0.001, Adam's usual default).
    momentum : float
        SGD momentum (reference: 0); ignored by Adam.
    select_ratio : float
        Fraction of each cluster, nearest its centroid, trained on (reference: 0.4).
    seed : int
        Seeds torch (weights of a new model, dropout) and the shuffling generator.
    device : str
        'auto', 'cpu' or 'cuda' (see :func:`glue_ssclump.core.device.resolve_device`).
    class_balanced : bool
        Weight the cross-entropy per batch so each class carries half of it.
    recalibrate_bn : bool
        After the training passes, recompute the BatchNorm running statistics as the
        exact average over (up to 2048 of) the epoch's training samples.  The network
        uses Keras' slow running average (momentum 0.99), which needs hundreds of
        steps to settle; on a few hundred candidates the inference-mode features and
        probabilities would otherwise use stale statistics (a small-data fix, not in
        the reference code).
    deterministic : bool
        On CUDA, ask torch for deterministic kernels during training (restored
        afterwards); CPU training is reproducible without it.
    num_threads : int or None
        torch CPU threads during training (restored afterwards); ``None`` keeps them.
    """

    epochs: int = 20
    passes: int = 5
    batch_size: int = 128
    infer_batch_size: int = 256
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.0
    select_ratio: float = 0.4
    seed: int = 0
    device: str = "auto"
    class_balanced: bool = True
    recalibrate_bn: bool = True
    deterministic: bool = True
    num_threads: int | None = None

    def __post_init__(self) -> None:
        self.optimizer = str(self.optimizer).lower()
        if self.optimizer not in DEFAULT_LR:
            raise ValueError(f"optimizer must be one of {sorted(DEFAULT_LR)}, "
                             f"not {self.optimizer!r}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        for name in ("epochs", "passes", "batch_size", "infer_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)!r}")
            setattr(self, name, int(getattr(self, name)))
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, not {self.lr!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if not 0.0 < self.select_ratio <= 1.0:
            raise ValueError(f"select_ratio must be in (0, 1], not {self.select_ratio!r}")
        if self.num_threads is not None and int(self.num_threads) < 1:
            raise ValueError(f"num_threads must be >= 1 or None, not {self.num_threads!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dictionary of the settings (``lr`` resolved)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored with a warning."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"TrainConfig: ignoring unknown settings {unknown}", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})


def _nan() -> float:
    return float("nan")


@dataclass
class EpochRecord:
    """What one epoch did; ``epoch == 0`` describes the starting model (no training).

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    loss : float
        Mean training loss over the epoch's batches (weighted by batch size).
    n_selected : int
        Samples trained on (nearest fraction of each cluster plus the seeds).
    nmi_prev : float
        NMI between the pseudo-labels trained on and those of the trained network.
    n_reassigned : int
        Candidates whose pseudo-label changed over the epoch.
    cluster_sizes : tuple of int
        Pseudo-label counts (class 0, class 1) the epoch trained from.
    selected_sizes : tuple of int
        Selected counts (class 0, class 1).
    seconds : float
        Wall time of the epoch.
    precision, recall, f1, accuracy, auc : float
        Held-out scores of the classifier at threshold 0.5 (NaN without a held-out set).
    hist_edges : ndarray
        ``HIST_BINS + 1`` bin edges over [0, 1] of the probability histograms.
    hist_all : ndarray
        Counts of p(clump) over all candidates after the epoch.
    hist_pos, hist_neg : ndarray or None
        The same for the held-out clumps / non-clumps.
    """

    epoch: int
    loss: float
    n_selected: int
    nmi_prev: float
    n_reassigned: int
    cluster_sizes: tuple[int, int]
    selected_sizes: tuple[int, int]
    seconds: float
    precision: float = field(default_factory=_nan)
    recall: float = field(default_factory=_nan)
    f1: float = field(default_factory=_nan)
    accuracy: float = field(default_factory=_nan)
    auc: float = field(default_factory=_nan)
    hist_edges: np.ndarray = field(
        default_factory=lambda: np.linspace(0.0, 1.0, HIST_BINS + 1))
    hist_all: np.ndarray = field(default_factory=lambda: np.zeros(HIST_BINS, np.int64))
    hist_pos: np.ndarray | None = None
    hist_neg: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (arrays as lists, NaN kept as float NaN)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """Rebuild from :meth:`to_dict` output."""
        kw = dict(data)
        for name in ("cluster_sizes", "selected_sizes"):
            kw[name] = tuple(int(v) for v in kw[name])
        kw["hist_edges"] = np.asarray(kw["hist_edges"], dtype=float)
        kw["hist_all"] = np.asarray(kw["hist_all"], dtype=np.int64)
        for name in ("hist_pos", "hist_neg"):
            if kw.get(name) is not None:
                kw[name] = np.asarray(kw[name], dtype=np.int64)
        return cls(**kw)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model : torch.nn.Module
        The network after the last completed epoch (the same object that was passed in
        when fine-tuning).
    history : list of EpochRecord
        One record per completed epoch.
    config : TrainConfig
    completed_epochs : int
    cancelled : bool
        True when the caller cancelled; ``model`` then holds the last completed epoch.
    initial : EpochRecord or None
        Epoch 0: the starting model's clustering, held-out scores and histograms.
    pseudo_labels : ndarray or None
        Constrained-KMeans labels of the returned model's features (1 = clump); None
        when cancelled before the starting model's features were computed.
    """

    model: torch.nn.Module
    history: list[EpochRecord]
    config: TrainConfig
    completed_epochs: int
    cancelled: bool
    initial: EpochRecord | None = None
    pseudo_labels: np.ndarray | None = None


# -- validation -------------------------------------------------------------------------

def _check_seeds(seed_labels: np.ndarray, n: int) -> np.ndarray:
    seeds = np.asarray(seed_labels)
    if seeds.shape != (n,):
        raise ValueError(f"seed_labels must have one entry per candidate, shape ({n},); "
                         f"got shape {seeds.shape}")
    if not np.issubdtype(seeds.dtype, np.integer):
        if not np.all(np.isfinite(seeds)) or np.any(seeds != np.round(seeds)):
            raise ValueError("seed_labels must be integers: -1 unlabelled, 0 not clump, "
                             "1 clump")
    seeds = seeds.astype(np.int64)
    bad = ~np.isin(seeds, (-1, 0, 1))
    if bad.any():
        raise ValueError(f"seed_labels may only hold -1 (unlabelled), 0 (not clump) and "
                         f"1 (clump); found {sorted(set(seeds[bad].tolist()))[:5]}")
    for cls in (0, 1):
        count = int(np.count_nonzero(seeds == cls))
        if count == 0:
            raise ValueError(
                f"no seed of class {_CLASS_NAMES[cls]}: Constrained-KMeans needs both "
                f"classes. Label at least one candidate of each class (clump = 1 and "
                f"not clump = 0; at least {MIN_SEEDS} each is better) before "
                f"training.")
        if count < MIN_SEEDS:
            warnings.warn(
                f"only {count} seed(s) of class {_CLASS_NAMES[cls]}; the clusters may "
                f"drift. Label at least {MIN_SEEDS} per class (the paper used "
                f"about 100-190 seeds per region).", UserWarning, stacklevel=3)
    return seeds


def _check_heldout(heldout: tuple[np.ndarray, np.ndarray] | None, seeds: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    if heldout is None:
        return None
    try:
        index, labels = heldout
    except (TypeError, ValueError):
        raise ValueError("heldout must be a pair (indices, labels)") from None
    index = np.asarray(index)
    labels = np.asarray(labels)
    if index.ndim != 1 or labels.shape != index.shape:
        raise ValueError(f"heldout indices and labels must be 1-D and equally long; got "
                         f"shapes {index.shape} and {labels.shape}")
    if index.size == 0:
        raise ValueError("heldout is empty; pass None for no held-out evaluation")
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError("heldout indices must be integers (positions in the samples)")
    n = seeds.shape[0]
    if index.min() < 0 or index.max() >= n:
        raise ValueError(f"heldout indices must lie in [0, {n}); got {index.min()}.."
                         f"{index.max()}")
    if np.unique(index).size != index.size:
        raise ValueError("heldout indices must be unique")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("heldout labels must be 0 (not clump) or 1 (clump)")
    overlap = index[seeds[index] >= 0]
    if overlap.size:
        raise ValueError(
            f"{overlap.size} held-out candidate(s) are also seeds (e.g. index "
            f"{overlap[:5].tolist()}): held-out labels must never train the model. Remove "
            f"them from the seeds (set -1) or from the held-out set.")
    return index.astype(np.int64), labels.astype(np.int64)


# -- torch state ------------------------------------------------------------------------

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


# -- the loop ---------------------------------------------------------------------------

def _histograms(probs: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None,
                ) -> dict[str, Any]:
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    out: dict[str, Any] = {"hist_edges": edges,
                           "hist_all": np.histogram(probs, bins=edges)[0].astype(np.int64)}
    if held is not None:
        index, labels = held
        p = probs[index]
        out["hist_pos"] = np.histogram(p[labels == 1], bins=edges)[0].astype(np.int64)
        out["hist_neg"] = np.histogram(p[labels == 0], bins=edges)[0].astype(np.int64)
    return out


def _heldout_scores(probs: np.ndarray, held: tuple[np.ndarray, np.ndarray] | None,
                    ) -> dict[str, float]:
    if held is None:
        return {}
    index, labels = held
    report = binary_report(labels, probs[index], threshold=0.5)
    return {name: float(report[key]) for name, key in _REPORT_KEYS.items()}


def _class_sizes(labels: np.ndarray) -> tuple[int, int]:
    return int(np.count_nonzero(labels == 0)), int(np.count_nonzero(labels == 1))


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
            # oneDNN's channels-last 3D kernels: 1.5x faster training steps here
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


# -- starting points and logs -----------------------------------------------------------

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
    arch : {'paper', 'context'}
        Architecture of 'default' (:data:`DEFAULT_CHECKPOINT` or
        :data:`DEFAULT_CONTEXT_CHECKPOINT`) and 'scratch'; a file brings its own.

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
        return build_model(arch).to(dev)
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


def history_to_table(history: list[EpochRecord]) -> Table:
    """One row per epoch with the :data:`LOG_COLUMNS` (NaN where not measured).

    Parameters
    ----------
    history : list of EpochRecord

    Returns
    -------
    astropy.table.Table
    """
    ints = {"epoch", "n_selected", "n_reassigned"}
    cols = {}
    for name in LOG_COLUMNS:
        values = [getattr(r, name) for r in history]
        cols[name] = np.asarray(values, dtype=np.int64 if name in ints else np.float64)
    table = Table(cols, names=LOG_COLUMNS)
    table["seconds"].unit = "s"
    return table


def write_history_csv(history: list[EpochRecord], path: str | Path) -> Path:
    """Write ``training_log.csv`` (:func:`history_to_table`) to ``path``; return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = history_to_table(history)
    table["seconds"].unit = None
    table.write(path, format="ascii.csv", overwrite=True)
    return path
