"""The long-work API shared by the CLI, the glue integration and the Qt front end.

:func:`detect` (cube -> mask -> catalogue, optionally cross-matched with a second
detector) and :func:`verify` (candidates + manual labels -> the ensemble verifier, or
SS-3D-Clump fine-tuned on the labels -> ``p_clump`` / ``verdict`` / ``label``
columns) each take one :class:`~glue_ssclump.core.progress.Progress`, so a front end
shows one bar and can cancel at any batch.  Nothing here writes files; :func:`save_verification` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from astropy.table import Table

from ..version import __version__
from .catalog import build_catalog, crossmatch
from .checkpoint import save_checkpoint
from .ckmeans import constrained_kmeans
from .context import ContextSamples
from .cube import PPVCube, estimate_rms
from .detectors import DetectionResult, run_detector
from .labels import (
    DEFAULT_BAND,
    DEFAULT_THRESHOLD,
    LABEL_CLUMP,
    LABEL_NONE,
    LABEL_NOT_CLUMP,
    labels_array,
    seed_labels,
)
from .model import ARCH_VERSION, INPUT_SIZE, infer
from .progress import Progress, ensure_progress
from .samples import CandidateSamples
from .train_config import ARCH_NAMES
from .training import EpochRecord, TrainConfig, TrainResult, load_initial_model, train
from .verify import cluster_threshold, elbow_threshold, seed_f1_threshold, verify_catalog


# -- detection ------------------------------------------------------------------------
@dataclass
class Detection:
    """A detection run: the mask, its catalogue, and what produced them."""

    cube: PPVCube
    result: DetectionResult
    catalog: Table

    @property
    def mask(self) -> np.ndarray:
        return self.result.mask


def detect(
    cube: PPVCube,
    method: str = "clumpfind",
    rms: float | None = None,
    params: Mapping[str, Any] | None = None,
    crossmatch_with: str | None = None,
    crossmatch_params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Detection:
    """Detect candidates in ``cube`` and catalogue them.

    Parameters
    ----------
    cube : PPVCube
    method : str
        Detector name (see :func:`~glue_ssclump.core.detectors.available_detectors`).
    rms : float, optional
        Noise rms in K; default :func:`~glue_ssclump.core.cube.estimate_rms`.
    params : mapping, optional
        Detector parameters (numbers in K, strings like ``"3rms"``).
    crossmatch_with : str, optional
        A second detector; its matches fill ``matched_by`` / ``match_id`` /
        ``n_detectors`` (the paper's high-confidence rule).
    crossmatch_params : mapping, optional
        Parameters of the second detector.
    progress : Progress, optional

    Returns
    -------
    Detection
    """
    progress = ensure_progress(progress)
    rms = float(rms) if rms is not None else estimate_rms(cube.data)
    end = 0.55 if crossmatch_with else 0.9
    result = run_detector(cube.data, method, rms, params, progress.span(0.0, end))
    catalog = build_catalog(cube, result.mask, result.detector, rms, result.params,
                            progress=progress.span(end, end + 0.05))
    if crossmatch_with:
        other = run_detector(cube.data, crossmatch_with, rms, crossmatch_params,
                             progress.span(0.6, 0.95))
        other_cat = build_catalog(cube, other.mask, other.detector, rms, other.params)
        catalog = crossmatch(catalog, result.mask, other_cat, other.mask)
    progress.update(1.0, f"{result.detector}: {len(catalog)} candidates")
    return Detection(cube=cube, result=result, catalog=catalog)


def cross_match_seeds(catalog: Table, n_negative: int | None = None) -> dict[int, int]:
    """The demo's automatic seeds: cross-matched positives, faint lone negatives.

    Positives (the paper's high-confidence rule): every candidate that a second detector
    also found (``n_detectors >= 2``).  Negatives (our documented rule; the paper's were
    verified by hand): candidates that no second detector confirms, faintest peak first,
    as many as there are positives (``n_negative`` overrides), at least 10.  These are
    the candidates a person would reject first; real labels from the verification viewer
    are better seeds.

    Returns
    -------
    dict
        ``{clump_id: 1 or 0}``.
    """
    if "n_detectors" not in catalog.colnames:
        raise ValueError("cross_match_seeds needs a cross-matched catalogue "
                         "(detect(..., crossmatch_with='dendrogram'))")
    ids = np.asarray(catalog["clump_id"], dtype=np.int64)
    matched = np.asarray(catalog["n_detectors"]) >= 2
    snr = np.asarray(catalog["snr_peak"], dtype=float)
    seeds = {int(i): LABEL_CLUMP for i in ids[matched]}
    lone = np.flatnonzero(~matched)
    lone = lone[np.argsort(snr[lone], kind="stable")]
    n_neg = max(len(seeds), 10) if n_negative is None else int(n_negative)
    seeds.update({int(i): LABEL_NOT_CLUMP for i in ids[lone[:n_neg]]})
    return seeds


# -- verification ---------------------------------------------------------------------
@dataclass
class Verification:
    """Outcome of :func:`verify`."""

    catalog: Table
    p_clump: np.ndarray
    model: torch.nn.Module
    threshold: float
    uncertain_band: float
    train_result: TrainResult | None = None
    init: str = "default"
    n_seeds: dict[str, int] = field(default_factory=dict)
    #: Noise rms (K) of the sample background, and where it came from: 'option' (the
    #: caller's ``rms``), 'catalogue' (its ``meta['rms']``) or 'estimate'
    #: (:func:`~glue_ssclump.core.cube.estimate_rms` of the cube).  The verdicts depend
    #: on it: the samples' background noise is drawn at this rms (docs/verifier.md).
    rms: float = float("nan")
    rms_source: str = ""

    @property
    def cancelled(self) -> bool:
        return bool(self.train_result is not None and self.train_result.cancelled)

    def counts(self) -> dict[str, int]:
        """Number of candidates per verdict."""
        verdict = np.asarray(self.catalog["verdict"])
        return {v: int(np.sum(verdict == v)) for v in ("clump", "rejected", "uncertain")}


def verify(
    data: np.ndarray,
    mask: np.ndarray,
    catalog: Table,
    labels: Mapping[int, int] | np.ndarray | None = None,
    *,
    config: TrainConfig | None = None,
    init: str | Path | torch.nn.Module = "default",
    train_model: bool | None = None,
    threshold: float | str = DEFAULT_THRESHOLD,
    uncertain_band: float = DEFAULT_BAND,
    pool: np.ndarray | None = None,
    heldout: tuple[np.ndarray, np.ndarray] | None = None,
    rms: float | None = None,
    sample_seed: int = 0,
    arch: str | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> Verification:
    """Verify every candidate: the default verifier, or SS-3D-Clump fine-tuned on labels.

    With the defaults (``init='default'``, no ``arch``, ``train_model`` not True) the
    candidates are scored by the ensemble verifier (``arch='ensemble'``: the shipped
    context and paper networks together, applied as they are; docs/verifier.md).  Asking
    for training (``train_model=True``) or for ``arch='paper'`` / ``'context'``
    fine-tunes that network on the labelled candidates by the paper's loop.

    Parameters
    ----------
    data : ndarray
        The cube ``(v, y, x)`` in K.
    mask : ndarray of int
        The detector's mask (same shape).
    catalog : astropy.table.Table
        One row per candidate with ``clump_id``; every column is kept in the result.
    labels : mapping or ndarray, optional
        Manual labels: ``{clump_id: code}`` or per-row codes (1 clump, 0 not clump,
        2 uncertain, -1 none).  Codes 1 and 0 are the training seeds.
    config : TrainConfig, optional
        Training settings (epochs, lr, device, ...).
    init : {'default', 'scratch'}, path or torch.nn.Module
        Starting model: the shipped checkpoint (normal), new weights, a checkpoint file,
        or a model object.
    train_model : bool, optional
        Train before verifying; default: when ``labels`` holds seeds, except for the
        ensemble verifier, which is never trained.  ``False`` is "verify only" (apply
        ``init`` as it is).
    threshold : float, 'clusters', 'elbow' or 'seeds'
        p(clump) at which a candidate is a clump.  'clusters' calls as many candidates
        clumps as the final Constrained-KMeans partition (seeded by the labelled
        candidates) put in the clump cluster (:func:`~glue_ssclump.core.verify.
        cluster_threshold`; after training, the partition of its last epoch over the
        pool; in verify-only mode, a partition of the model's features); 'elbow' takes
        the ROC elbow of the labelled candidates (which training has seen, so their
        probabilities are optimistic); 'seeds' the cut with the best F1 on them (meant
        for a pretrained model applied without training, ``train_model=False``, as the
        context verifier is used in docs/verifier.md).
    uncertain_band : float
        ``|p - threshold| <`` band is 'uncertain'.
    pool : ndarray of bool, optional
        Per-row flags (bool) of the candidates to train on (a region / subset; seeds inside it
        only).  Every candidate is verified regardless.
    heldout : (row indices, labels), optional
        Labelled test candidates scored every epoch (never seeds).
    rms : float, optional
        Noise rms (K) for the sample background; default the catalogue's
        ``meta['rms']``, else estimated from the cube.  The value and its source are
        returned (``Verification.rms`` / ``rms_source``) and stored in the catalogue's
        meta (``ssclump_rms``, ``ssclump_rms_source``): the verdicts depend on it.
    sample_seed : int
        Seed of the sample background noise.
    arch : {'ensemble', 'paper', 'context'}, optional
        Network for ``init='default'`` / ``'scratch'`` (a checkpoint or model object
        brings its own): 'paper' is the reference network on the paper's samples,
        'context' adds the surroundings, masks and SNR (:mod:`~glue_ssclump.core.context`),
        'ensemble' is both shipped networks voting (:mod:`~glue_ssclump.core.ensemble`;
        ``init='default'`` only, never trained).  Default: 'ensemble' for
        ``init='default'`` unless ``train_model=True``, else 'paper'.
    progress : Progress, optional
    on_epoch : callable, optional
        Called with every completed epoch's record (live plots).

    Returns
    -------
    Verification
        On cancellation during training the returned model is the last completed
        epoch's and ``cancelled`` is True; the catalogue is then *not* updated
        (``p_clump`` is empty) so nothing half-done reaches the user's table.
    """
    progress = ensure_progress(progress)
    config = config if config is not None else TrainConfig()
    ids = np.asarray(catalog["clump_id"], dtype=np.int64)
    if labels is None and "label" in catalog.colnames:
        labels = np.asarray(catalog["label"], dtype=np.int64)  # keep stored labels
    codes = _label_codes(ids, labels)
    seeds = seed_labels(codes)
    if pool is not None:
        pool = np.asarray(pool, dtype=bool)
        if pool.shape != ids.shape:
            raise ValueError(f"pool has {pool.size} entries for {ids.size} candidates")
        if not pool.any():
            raise ValueError("the candidate pool is empty: choose a subset that holds "
                             "candidates, or use all candidates")
    arch = resolve_arch(arch, init, train_model)
    rms_source = "option"
    if rms is None and catalog.meta.get("rms") is not None:
        rms, rms_source = float(catalog.meta["rms"]), "catalogue"
    if rms is None:
        rms, rms_source = float(estimate_rms(np.asarray(data, dtype=np.float32))), "estimate"
    model = init if isinstance(init, torch.nn.Module) else load_initial_model(
        init, config.device, arch=arch)
    ensemble = getattr(model, "arch", "paper") == "ensemble"
    if train_model is None:
        train_model = not ensemble and bool(np.any(seeds >= 0))
    if train_model and ensemble:
        raise ValueError("the ensemble verifier is applied as it is and cannot be trained "
                         "on labels; to fine-tune on them use arch='paper' (or 'context'),"
                         " or verify without training")
    # The network's input decides what a sample is (1 or 4 channels).
    sample_cls = ContextSamples if getattr(model, "in_channels", 1) == 4 \
        else CandidateSamples
    samples = sample_cls(data, mask, clump_ids=ids, rms=rms, seed=sample_seed)
    # Checked before training: a bad rule must not cost a training run.
    rule = threshold if isinstance(threshold, str) else "fixed"
    if rule not in ("fixed", "clusters", "elbow", "seeds"):
        raise ValueError(f"threshold must be a number, 'clusters' or 'elbow' (or 'seeds'), "
                         f"not {threshold!r}")
    known = seeds >= 0
    if rule != "fixed" and np.unique(seeds[known]).size < 2:
        raise ValueError(f"threshold {rule!r} needs labelled candidates of both classes; "
                         f"label some clumps and some non-clumps, or give a number")
    result: TrainResult | None = None
    in_pool = np.flatnonzero(pool) if pool is not None else np.arange(ids.size)
    if train_model:
        # Samples depend only on (seed, clump id), so a pool's own source is consistent.
        sub = samples if pool is None else sample_cls(
            data, mask, clump_ids=ids[in_pool], rms=samples.rms,
            lag1=samples.lag1, seed=sample_seed)
        held = heldout
        if heldout is not None and pool is not None:
            held = _reindex_heldout(heldout, in_pool)
        result = train(sub, seeds[in_pool], config, model=model, heldout=held,
                       progress=progress.span(0.0, 0.85), on_epoch=on_epoch)
        model = result.model
        if result.cancelled:
            return Verification(catalog=catalog, p_clump=np.empty(0, np.float32),
                                model=model, threshold=float("nan"),
                                uncertain_band=uncertain_band, train_result=result,
                                init=_init_name(init), n_seeds=_seed_counts(seeds),
                                rms=float(samples.rms), rms_source=rms_source)
    p, feats = infer(model, samples, batch_size=config.infer_batch_size,
                     device=config.device,
                     progress=progress.span(0.85 if train_model else 0.0, 1.0))
    if rule == "clusters":
        if result is not None and result.pseudo_labels is not None:
            fraction = float(np.mean(result.pseudo_labels == 1))
        else:
            in_pool = np.arange(ids.size)
            fraction = float(np.mean(constrained_kmeans(feats, seeds).labels == 1))
        threshold = cluster_threshold(p[in_pool], fraction)
    elif rule == "elbow":
        threshold = elbow_threshold(p[known], seeds[known])
    elif rule == "seeds":
        threshold = seed_f1_threshold(p[known], seeds[known])
    out = verify_catalog(catalog, p, float(threshold), uncertain_band)
    out.meta["ssclump_threshold_rule"] = rule
    out["label"] = codes.astype(np.int16)
    out.meta["model_init"] = _init_name(init)
    out.meta["ssclump_rms"] = float(samples.rms)
    out.meta["ssclump_rms_source"] = rms_source
    progress.update(1.0, "verified")
    return Verification(catalog=out, p_clump=p, model=model, threshold=float(threshold),
                        uncertain_band=uncertain_band, train_result=result,
                        init=_init_name(init), n_seeds=_seed_counts(seeds),
                        rms=float(samples.rms), rms_source=rms_source)


def resolve_arch(arch: str | None, init: Any, train_model: bool | None) -> str:
    """The network :func:`verify` uses: ``arch`` if given; else the ensemble verifier
    for the shipped models applied as they are, the paper's network otherwise."""
    if arch is not None:
        if arch not in ARCH_NAMES:
            raise ValueError(f"arch must be one of {ARCH_NAMES}, not {arch!r}")
        return arch
    if isinstance(init, str) and init == "default" and train_model is not True:
        return "ensemble"
    return "paper"


def _label_codes(ids: np.ndarray, labels: Mapping[int, int] | np.ndarray | None
                 ) -> np.ndarray:
    if labels is None:
        return np.full(ids.shape, LABEL_NONE, dtype=np.int64)
    if isinstance(labels, Mapping):
        return labels_array(ids, labels)
    codes = np.asarray(labels, dtype=np.int64)
    if codes.shape != ids.shape:
        raise ValueError(f"{codes.size} label codes for {ids.size} candidates")
    return codes


def _reindex_heldout(heldout: tuple[np.ndarray, np.ndarray], rows: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    idx, lab = (np.asarray(a) for a in heldout)
    pos = np.full(int(max(rows.max(initial=0), idx.max(initial=0))) + 1, -1, dtype=np.int64)
    pos[rows] = np.arange(rows.size)
    keep = pos[idx] >= 0
    return (pos[idx[keep]], lab[keep]) if keep.any() else None


def _seed_counts(seeds: np.ndarray) -> dict[str, int]:
    return {"clump": int(np.sum(seeds == 1)), "not_clump": int(np.sum(seeds == 0))}


def _init_name(init: Any) -> str:
    return "model object" if isinstance(init, torch.nn.Module) else str(init)


def checkpoint_metadata(v: Verification, extra: Mapping[str, Any] | None = None
                        ) -> dict[str, Any]:
    """Plain-typed metadata describing how ``v.model`` was made."""
    meta: dict[str, Any] = {
        "arch_version": getattr(v.model, "arch_version", ARCH_VERSION),
        "arch": getattr(v.model, "arch", "paper"),
        "rms": float(v.rms),
        "rms_source": v.rms_source,
        "input_size": INPUT_SIZE,
        "normalisation": "minmax",
        "package_version": __version__,
        "init": v.init,
        "n_seeds": dict(v.n_seeds),
        "threshold": float(v.threshold),
    }
    if v.train_result is not None:
        meta["training"] = v.train_result.config.to_dict()
        meta["completed_epochs"] = int(v.train_result.completed_epochs)
        meta["history"] = [rec.to_dict() for rec in v.train_result.history]
    meta.update(extra or {})
    return meta


def save_verification(v: Verification, out_dir: str | Path,
                      extra_meta: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``model.pt``, ``training_log.csv`` and ``training.png`` into ``out_dir``."""
    from .report import plot_training
    from .training import write_history_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"model": out / "model.pt"}
    save_checkpoint(paths["model"], v.model, checkpoint_metadata(v, extra_meta))
    if v.train_result is not None and v.train_result.history:
        paths["log"] = write_history_csv(v.train_result.history, out / "training_log.csv")
        paths["plot"] = Path(plot_training(v.train_result.history, out / "training.png",
                                           initial=v.train_result.initial))
    return paths
