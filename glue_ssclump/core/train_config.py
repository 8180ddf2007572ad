"""Settings of a semi-supervised training run (:class:`TrainConfig`).

The settings are stored in checkpoint metadata (:meth:`TrainConfig.to_dict`), so a
trained model records how it was trained.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ARCH_NAMES", "DEFAULT_LR", "TrainConfig"]

#: Networks ``verify(arch=...)`` accepts; the first is the default verifier
#: (:mod:`~glue_ssclump.core.ensemble`).  Here, not there, so the CLI can list them
#: without importing torch.
ARCH_NAMES = ("ensemble", "paper", "context")

#: Learning rate used when :attr:`TrainConfig.lr` is left at ``None``.
DEFAULT_LR = {"sgd": 0.005, "adam": 1e-3}


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
        and its activations small while a batch still holds both classes.
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
