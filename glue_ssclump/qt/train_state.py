"""Settings of the train & verify dialog, as an echo state (Qt-free display names)."""

from __future__ import annotations

from typing import Any

from echo import CallbackProperty, SelectionCallbackProperty
from glue.core.state_objects import State

from ..core.pipeline import DEFAULT_BAND, DEFAULT_THRESHOLD
from ..core.training import DEFAULT_CHECKPOINT, TrainConfig
from .state import data_label

__all__ = ["TrainState", "pool_label"]

_INIT_LABELS = {"default": "Shipped default model", "scratch": "From scratch (new weights)",
                "checkpoint": "Checkpoint file"}
_MODE_LABELS = {"train": "Train, then verify all candidates",
                "verify": "Verify only (no training; shipped default: the ensemble verifier)"}
_DEVICE_LABELS = {"auto": "auto", "cpu": "cpu", "cuda": "cuda"}
_THRESHOLD_LABELS = {"fixed": "Fixed p(clump)",
                     "clusters": "From the clusters",
                     "elbow": "ROC elbow of the labels"}


def _group_label(group: Any) -> str:
    return "(none)" if group is None else str(group.label)


def pool_label(group: Any) -> str:
    return "All candidates" if group is None else str(group.label)


class TrainState(State):
    """Settings of the train & verify dialog (autoconnected to ``train_dialog.ui``)."""

    catalog_data = SelectionCallbackProperty(docstring="Candidate catalogue")
    use_labels = CallbackProperty(True, docstring="Seed from the manual label column")
    clump_subset = SelectionCallbackProperty(docstring="Subset of clump seeds")
    not_clump_subset = SelectionCallbackProperty(docstring="Subset of not-clump seeds")
    pool_subset = SelectionCallbackProperty(docstring="Candidates trained on (None = all)")
    mode = SelectionCallbackProperty(default_index=0, choices=list(_MODE_LABELS))
    init = SelectionCallbackProperty(default_index=0, choices=list(_INIT_LABELS))
    checkpoint_path = CallbackProperty("", docstring="Checkpoint file (init='checkpoint')")
    epochs = CallbackProperty(TrainConfig.epochs)
    device = SelectionCallbackProperty(default_index=0, choices=list(_DEVICE_LABELS))
    lr = CallbackProperty(0.005)
    optimizer = SelectionCallbackProperty(default_index=0, choices=["sgd", "adam"])
    select_ratio = CallbackProperty(TrainConfig.select_ratio)
    batch_size = CallbackProperty(TrainConfig.batch_size)
    passes = CallbackProperty(TrainConfig.passes)
    seed = CallbackProperty(TrainConfig.seed)
    threshold_rule = SelectionCallbackProperty(default_index=0,
                                               choices=list(_THRESHOLD_LABELS))
    threshold = CallbackProperty(DEFAULT_THRESHOLD)
    uncertain_band = CallbackProperty(DEFAULT_BAND)
    holdout_percent = CallbackProperty(0)
    out_dir = CallbackProperty("", docstring="Folder of the run folders")
    n_uncertain = CallbackProperty(20, docstring="Uncertain candidates listed")

    def __init__(self) -> None:
        super().__init__()
        TrainState.catalog_data.set_display_func(self, data_label)
        TrainState.clump_subset.set_display_func(self, _group_label)
        TrainState.not_clump_subset.set_display_func(self, _group_label)
        TrainState.pool_subset.set_display_func(self, pool_label)
        TrainState.mode.set_display_func(self, _MODE_LABELS.get)
        TrainState.init.set_display_func(self, self._init_label)
        TrainState.device.set_display_func(self, self._device_label)
        TrainState.threshold_rule.set_display_func(self, _THRESHOLD_LABELS.get)
        self.lr = TrainConfig().lr
        if not DEFAULT_CHECKPOINT.is_file():
            self.init = "scratch"

    @staticmethod
    def _init_label(value: str) -> str:
        text = _INIT_LABELS.get(value, value)
        if value == "default" and not DEFAULT_CHECKPOINT.is_file():
            text += " (not installed)"
        return text

    @staticmethod
    def _device_label(value: str) -> str:
        if value == "cuda":
            import torch

            if not torch.cuda.is_available():
                return "cuda (not available)"
        return value

    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` of these settings."""
        return TrainConfig(epochs=int(self.epochs), passes=int(self.passes),
                           batch_size=int(self.batch_size), optimizer=str(self.optimizer),
                           lr=float(self.lr), select_ratio=float(self.select_ratio),
                           seed=int(self.seed), device=str(self.device))
