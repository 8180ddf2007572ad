"""Candidate sets with known truth, and the shipped default model.

:func:`synthetic_candidate_set` makes a synthetic cube, detects candidates in it and
marks each one true or false against the injected clumps; the accuracy benchmark and
:func:`train_default_model` (``ssclump train-default``) both start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .cube import cube_from_array
from .pipeline import detect
from .progress import Progress, ensure_progress
from .samples import SAMPLE_SIZE, CandidateSamples, SampleSource
from .synthetic import make_synthetic_cube, score_candidates
from .training import TrainConfig, TrainResult, train

#: Cubes the default model is trained on: preset 'benchmark', these seeds.  The
#: accuracy benchmark uses seeds from 100 up, so it never sees them.
DEFAULT_TRAIN_SEEDS = (0, 1, 2, 3)
DEFAULT_TRAIN_SHAPE = (64, 128, 128)


@dataclass
class CandidateSet:
    """A synthetic cube's candidates and whether each one is real."""

    data: np.ndarray
    header: fits.Header
    mask: np.ndarray
    catalog: Table
    truth: Table
    is_true: np.ndarray
    rms: float
    seed: int
    method: str

    @property
    def false_fraction(self) -> float:
        return float(1.0 - self.is_true.mean()) if self.is_true.size else float("nan")

    def samples(self, sample_seed: int = 0, cache: str | None = "auto",
                arch: str = "paper") -> CandidateSamples:
        """The candidates' samples for a network of architecture ``arch``."""
        cls = CandidateSamples
        if arch == "context":
            from .context import ContextSamples

            cls = ContextSamples
        return cls(self.data, self.mask, clump_ids=np.asarray(self.catalog["clump_id"]),
                   rms=self.rms, seed=sample_seed, cache=cache)


def synthetic_candidate_set(seed: int, shape: Sequence[int] | None = None,
                            method: str = "clumpfind", preset: str = "benchmark",
                            params: dict[str, Any] | None = None,
                            progress: Progress | None = None) -> CandidateSet:
    """Synthetic cube -> candidates (paper's settings at the true rms) -> truth flags.

    A candidate is true when an injected clump of peak SNR >= 5 lies within 2 pixels and
    2 channels of its peak (:func:`~glue_ssclump.core.synthetic.score_candidates`).
    """
    progress = ensure_progress(progress)
    data, header, truth = make_synthetic_cube(shape, seed=seed, preset=preset,
                                              progress=progress.span(0.0, 0.3))
    cube = cube_from_array(data, header, source=f"synthetic seed {seed}")
    rms = float(truth.meta["settings"]["rms"])
    det = detect(cube, method, rms, params, progress=progress.span(0.3, 1.0))
    is_true = score_candidates(det.catalog, truth)
    return CandidateSet(data=cube.data, header=header, mask=det.mask,
                        catalog=det.catalog, truth=truth, is_true=np.asarray(is_true, bool),
                        rms=rms, seed=seed, method=method)


def morph_candidate_set(seed: int, preset: str = "morph_hard", method: str = "clumpfind",
                        shape: Sequence[int] | None = None,
                        params: dict[str, Any] | None = None,
                        progress: Progress | None = None) -> CandidateSet:
    """Morphology-truth cube -> candidates (paper's settings, true rms) -> truth flags.

    The truth is :func:`~glue_ssclump.core.synthetic_morph.morph_truth` (a candidate
    is true at the peak of a dominant injected clump of SNR >= 3).
    """
    from .synthetic_morph import make_morph_cube, morph_truth

    progress = ensure_progress(progress)
    over = {} if shape is None else {"shape": tuple(shape)}
    data, header, truth, _ = make_morph_cube(seed, preset, progress=progress.span(0.0, 0.3),
                                             **over)
    cube = cube_from_array(data, header, source=f"morph {preset} seed {seed}")
    rms = float(truth.meta["settings"]["rms"])
    det = detect(cube, method, rms, params, progress=progress.span(0.3, 1.0))
    is_true = morph_truth(det.catalog, truth)
    return CandidateSet(data=cube.data, header=header, mask=det.mask,
                        catalog=det.catalog, truth=truth, is_true=np.asarray(is_true, bool),
                        rms=rms, seed=seed, method=method)


def pick_seeds(is_true: np.ndarray, fraction: float = 0.01, min_per_class: int = 10,
               seed: int = 0) -> np.ndarray:
    """Label a random ``fraction`` of the candidates (at least ``min_per_class`` each).

    Returns the seed array for :func:`~glue_ssclump.core.training.train`: 1 / 0 for
    the chosen candidates (their truth), -1 elsewhere.
    """
    rng = np.random.default_rng(seed)
    is_true = np.asarray(is_true, bool)
    n_total = max(int(fraction * is_true.size), 2 * min_per_class)  # floor: 'at most'
    out = np.full(is_true.size, -1, dtype=np.int64)
    pos, neg = np.flatnonzero(is_true), np.flatnonzero(~is_true)
    if pos.size < min_per_class or neg.size < min_per_class:
        raise ValueError(f"too few candidates of a class to seed ({pos.size} true, "
                         f"{neg.size} false; need {min_per_class} each)")
    n_pos = max(min_per_class, int(n_total * pos.size / is_true.size))
    n_neg = max(min_per_class, n_total - n_pos)
    out[rng.choice(pos, n_pos, replace=False)] = 1
    out[rng.choice(neg, n_neg, replace=False)] = 0
    return out


class ConcatSamples(SampleSource):
    """Several sample sources seen as one (e.g. candidates of several cubes)."""

    def __init__(self, parts: Sequence[SampleSource]) -> None:
        self.parts = list(parts)
        self.ids = np.concatenate([np.asarray(p.ids) for p in self.parts])
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def get(self, index: Any) -> np.ndarray:
        index = np.atleast_1d(np.asarray(index, dtype=np.int64))
        channels = self.parts[0].get(np.zeros(1, np.int64)).shape[1] if self.parts else 1
        out = np.empty((index.size, channels, SAMPLE_SIZE, SAMPLE_SIZE, SAMPLE_SIZE),
                       dtype=np.float32)
        part = np.searchsorted(self._starts, index, side="right") - 1
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k].get(index[sel] - self._starts[k])
        return out


def train_default_model(
    out_path: str | Path,
    seeds: Sequence[int] = DEFAULT_TRAIN_SEEDS,
    shape: Sequence[int] = DEFAULT_TRAIN_SHAPE,
    label_fraction: float = 0.1,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    log: Any = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train the shipped default model on synthetic ClumpFind candidates.

    SS-3D-Clump from scratch on the candidates of ``len(seeds)`` synthetic cubes
    (preset 'benchmark'), ``label_fraction`` of them labelled from the truth; the rest
    of the truth is the held-out set the log reports.  Reproducible: cubes, seeds and
    training are all seeded.

    Returns
    -------
    (TrainResult, metadata)
        The checkpoint is written to ``out_path`` with the metadata.
    """
    from .checkpoint import save_checkpoint

    progress = ensure_progress(progress)
    config = config if config is not None else TrainConfig(epochs=6, seed=0)
    sets = []
    for k, s in enumerate(seeds):
        sets.append(synthetic_candidate_set(
            s, shape, progress=progress.span(0.3 * k / len(seeds), 0.3 * (k + 1) / len(seeds))))
        if log:
            log(f"cube seed {s}: {len(sets[-1].catalog)} candidates, "
                f"{sets[-1].false_fraction:.0%} false")
    source = ConcatSamples([cs.samples() for cs in sets])
    truth = np.concatenate([cs.is_true for cs in sets]).astype(np.int64)
    seed_arr = pick_seeds(truth, fraction=label_fraction, seed=config.seed)
    held_idx = np.flatnonzero(seed_arr < 0)
    result = train(source, seed_arr, config, heldout=(held_idx, truth[held_idx]),
                   progress=progress.span(0.3, 1.0),
                   on_epoch=(lambda r: log(f"epoch {r.epoch}: loss {r.loss:.4f} "
                                           f"F1 {r.f1:.3f} AUC {r.auc:.3f}")) if log else None)
    last = result.history[-1] if result.history else None
    meta = {
        "trained_on": {"preset": "benchmark", "cube_seeds": list(map(int, seeds)),
                       "shape": list(map(int, shape)), "detector": "clumpfind",
                       "n_candidates": int(truth.size),
                       "label_fraction": float(label_fraction)},
        "training": config.to_dict(),
        "n_seeds": {"clump": int(np.sum(seed_arr == 1)),
                    "not_clump": int(np.sum(seed_arr == 0))},
        "heldout_metrics": ({k: float(getattr(last, k)) for k in
                             ("precision", "recall", "f1", "accuracy", "auc")}
                            if last is not None else {}),
        "command": "ssclump train-default",
    }
    if result.cancelled:
        raise ValueError("training was cancelled; the checkpoint was not written")
    save_checkpoint(out_path, result.model, meta)
    return result, meta


def supervised_train(samples: SampleSource, targets: np.ndarray, model: Any,
                     config: TrainConfig, index: np.ndarray | None = None,
                     progress: Progress | None = None) -> Any:
    """Train ``model`` in place on labelled samples (``config.passes`` shuffled passes).

    Class-balanced cross-entropy, ``config``'s optimizer, then the BatchNorm running
    statistics recomputed over (up to 2,048 of) the samples, as :func:`train` does
    after every epoch.  Used to pretrain a shipped model on synthetic truth and for
    the benchmark's supervised baselines.
    """
    import torch

    from .training import _make_optimizer, _recalibrate_batchnorm, _torch_session, _train_passes

    progress = ensure_progress(progress)
    index = np.arange(len(samples)) if index is None else np.asarray(index, np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    device = torch.device("cpu")
    with _torch_session(config, device):
        model.to(memory_format=torch.channels_last_3d)
        opt = _make_optimizer(model, config)
        rng = np.random.default_rng(config.seed)
        _train_passes(model, opt, samples, index, targets, config, rng, device,
                      progress.span(0.0, 0.9), "supervised")
        _recalibrate_batchnorm(model, samples, rng.permutation(index)[:2048],
                               config.batch_size, device, progress.span(0.9, 1.0),
                               "supervised")
    model.eval()
    return model


class FlipAugment(SampleSource):
    """Random flips of the v, y and x axes and a y/x transpose, one draw per batch.

    A clump, a filament bead or a cloud fragment stays what it is when mirrored or
    turned by 90 degrees on the sky, or mirrored in velocity; the network sees each
    candidate in up to 16 orientations.  Used for pretraining only (not reproducible
    across batch sizes: the draws follow the calls).
    """

    def __init__(self, source: SampleSource, seed: int = 0) -> None:
        self.source = source
        self.ids = source.ids
        self._rng = np.random.default_rng(seed)

    def get(self, index: Any) -> np.ndarray:
        x = self.source.get(index)
        for axis in (2, 3, 4):
            if self._rng.random() < 0.5:
                x = np.flip(x, axis=axis)
        if self._rng.random() < 0.5:
            x = x.transpose(0, 1, 2, 4, 3)
        return np.ascontiguousarray(x)


#: Cubes (seed, preset) and detectors the shipped context model is pretrained on; the
#: morphology benchmark tunes on seeds 50-51 and reports on seeds 100 and up.
CONTEXT_TRAIN_SEEDS = (0, 1, 2, 3, 4, 5)
#: Passes of the shipped context model's pretraining, chosen over 3, 6 and 10 on the
#: tuning cubes (the measurements are in docs/verifier.md).
CONTEXT_TRAIN_PASSES = 20
CONTEXT_TRAIN_PRESETS = ("morph", "morph_hard")
CONTEXT_TRAIN_METHODS = ("clumpfind", "fellwalker")


def train_context_default(out_path: str | Path, seeds: Sequence[int] = CONTEXT_TRAIN_SEEDS,
                          passes: int = CONTEXT_TRAIN_PASSES, augment: bool = True,
                          progress: Progress | None = None, log: Any = None) -> dict[str, Any]:
    """Pretrain the shipped ``arch='context'`` model on morphology-truth cubes.

    Supervised on the truth of every candidate (synthetic cubes have it) of
    ``seeds`` x :data:`CONTEXT_TRAIN_PRESETS` x :data:`CONTEXT_TRAIN_METHODS`, Adam
    (lr 1e-3, batch 64), ``passes`` passes with random flips (:class:`FlipAugment`,
    unless ``augment`` is False), then BatchNorm statistics recomputed.  On a new cube
    the paper's loop fine-tunes it from a few seeds, as it does the paper's default model.

    Returns
    -------
    dict
        The checkpoint's metadata (written to ``out_path``).
    """
    import torch

    from .checkpoint import save_checkpoint
    from .model import build_model

    progress = ensure_progress(progress)
    sets = [morph_candidate_set(s, p, m) for s in seeds for p in CONTEXT_TRAIN_PRESETS
            for m in CONTEXT_TRAIN_METHODS]
    source = ConcatSamples([cs.samples(arch="context") for cs in sets])
    truth = np.concatenate([cs.is_true for cs in sets]).astype(np.int64)
    if log:
        log(f"{truth.size} candidates from {len(sets)} cube/detector pairs, "
            f"{truth.mean():.0%} true")
    config = TrainConfig(passes=passes, optimizer="adam", batch_size=64, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model("context")
    supervised_train(FlipAugment(source) if augment else source, truth, model, config,
                     progress=progress)
    meta = {"trained_on": {"presets": list(CONTEXT_TRAIN_PRESETS),
                           "cube_seeds": list(map(int, seeds)),
                           "detectors": list(CONTEXT_TRAIN_METHODS),
                           "n_candidates": int(truth.size), "labels": "all (synthetic truth)",
                           "augmentation": ("flips v/y/x, y-x transpose" if augment
                                            else "none")},
            "training": config.to_dict(),
            "command": f"train_context_default(out, seeds={tuple(map(int, seeds))}, "
                       f"passes={passes}, augment={augment})"}
    save_checkpoint(out_path, model, meta)
    return meta
