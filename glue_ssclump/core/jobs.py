"""The dialogs' long jobs, free of glue and Qt, each runnable in a child process.

* training / verification: :class:`TrainJob` holds everything a run needs, copied out of
  glue on the GUI thread; :func:`run_job` runs it (``pipeline.verify`` and saving the
  model) anywhere; :func:`run_job_in_child` in a child process;
* detection: :func:`detect_candidates` (mask and catalogue of a cube), and
  :func:`detect_candidates_in_child`.

A child process (:mod:`.child_process`) is what the dialogs use: nothing the job does
can hold the GIL of the process that draws the interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .child_process import run_in_child
from .cube import PPVCube
from .detectors.base import ENTRY_POINT_GROUP
from .detectors.registry import plugin_manager
from .pipeline import (
    DEFAULT_BAND,
    DEFAULT_THRESHOLD,
    Verification,
    detect,
    save_verification,
    verify,
)
from .progress import Progress
from .training import EpochRecord, TrainConfig

__all__ = [
    "TrainJob",
    "TrainOutcome",
    "detect_candidates",
    "detect_candidates_in_child",
    "run_job",
    "run_job_in_child",
]


@dataclass
class TrainJob:
    """Everything a training / verification run needs, copied out of glue.

    Attributes
    ----------
    data, mask : ndarray
        Cube (K) and mask.
    catalog : astropy.table.Table
        ``clump_id`` per row (meta ``rms`` when known).
    codes : ndarray
        Seed codes per row (see :class:`SeedPlan`).
    config : TrainConfig
    init : str or Path
        'default', 'scratch' or a checkpoint path.
    train : bool
        False: verify only.
    threshold : float, 'clusters' or 'elbow'
        See :func:`~glue_ssclump.core.pipeline.verify`.
    uncertain_band : float
    pool : ndarray or None
    heldout : (rows, labels) or None
    out_dir : Path or None
        Run folder for the checkpoint, log and plot (``None``: nothing is saved).
    meta : dict
        Extra checkpoint metadata (catalogue, seeds source).
    """

    data: np.ndarray
    mask: np.ndarray
    catalog: Table
    codes: np.ndarray
    config: TrainConfig
    init: str | Path = "default"
    train: bool = True
    threshold: float | str = DEFAULT_THRESHOLD
    uncertain_band: float = DEFAULT_BAND
    pool: np.ndarray | None = None
    heldout: tuple[np.ndarray, np.ndarray] | None = None
    out_dir: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainOutcome:
    """What :func:`run_job` returns."""

    job: TrainJob | None
    verification: Verification
    paths: dict[str, Path]
    seconds: float

    @property
    def cancelled(self) -> bool:
        return self.verification.cancelled

    @property
    def completed_epochs(self) -> int:
        tr = self.verification.train_result
        return 0 if tr is None else int(tr.completed_epochs)


def run_job(job: TrainJob, progress: Any = None,
            on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainOutcome:
    """Run :func:`~glue_ssclump.core.pipeline.verify` for ``job`` and save the model.

    Safe on a worker thread (touches neither Qt nor glue).  A cancelled training
    returns the last completed epoch's model; it is saved (marked ``cancelled`` in the
    checkpoint metadata) when at least one epoch completed.

    Parameters
    ----------
    job : TrainJob
    progress : Progress, optional
    on_epoch : callable, optional
        Receives each completed epoch's record.

    Returns
    -------
    TrainOutcome
    """
    t0 = time.perf_counter()
    v = verify(job.data, job.mask, job.catalog, job.codes, config=job.config,
               init=job.init, train_model=job.train, threshold=job.threshold,
               uncertain_band=job.uncertain_band, pool=job.pool, heldout=job.heldout,
               progress=progress, on_epoch=on_epoch)
    paths: dict[str, Path] = {}
    tr = v.train_result
    if job.out_dir is not None and job.train and tr is not None and tr.completed_epochs > 0:
        extra = dict(job.meta, cancelled=bool(v.cancelled))
        paths = save_verification(v, job.out_dir, extra_meta=extra)
    return TrainOutcome(job=job, verification=v, paths=paths,
                        seconds=time.perf_counter() - t0)


def _run_detached(job: TrainJob, progress: Any = None,
                  on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainOutcome:
    """:func:`run_job` in the child; the job (the whole cube) is not sent back."""
    outcome = run_job(job, progress=progress, on_epoch=on_epoch)
    outcome.job = None
    return outcome


def run_job_in_child(job: TrainJob, progress: Any = None,
                     on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainOutcome:
    """:func:`run_job` in a child process: same arguments, same result.

    Progress and cancellation reach the child, ``on_epoch`` is called here (on the
    calling thread) with each epoch's record, and an exception raised by the run is
    raised here with the child's traceback as its cause.
    """
    kwargs: dict[str, Any] = {}
    if on_epoch is not None:
        kwargs["on_epoch"] = on_epoch
    outcome = run_in_child(_run_detached, job, progress=progress, forward=tuple(kwargs),
                           **kwargs)
    outcome.job = job
    return outcome


def detect_candidates(cube: PPVCube, method: str, params: dict[str, Any] | None = None,
                      rms: float | None = None, progress: Progress | None = None
                      ) -> tuple[np.ndarray, Table]:
    """Detect candidates in ``cube``: the mask (int32) and the catalogue.

    :func:`~glue_ssclump.core.pipeline.detect` without the cube in the result, so that
    a child process does not send the cube back.
    """
    det = detect(cube, method, rms, params, progress=progress)
    return np.asarray(det.mask, dtype=np.int32), det.catalog


def _from_entry_point(method: str) -> bool:
    """Whether a fresh interpreter finds detector ``method`` (from an entry point)."""
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name, plugin in plugin_manager().list_name_plugin():
        if name in names and any(d.name.lower() == method.lower()
                                 for d in plugin.ssclump_detectors() or ()):
            return True
    return False


def detect_candidates_in_child(cube: PPVCube, method: str,
                               params: dict[str, Any] | None = None,
                               rms: float | None = None, progress: Progress | None = None
                               ) -> tuple[np.ndarray, Table]:
    """:func:`detect_candidates` in a child process: same arguments, same result.

    A detector registered in this process at run time (not through the
    ``glue_ssclump.detectors`` entry points) does not exist in a fresh interpreter:
    it runs here, on the calling thread.
    """
    if not _from_entry_point(method):
        return detect_candidates(cube, method, params, rms, progress)
    return run_in_child(detect_candidates, cube, method, params, rms, progress=progress)
