"""One training / verification run of the train dialog, free of glue and Qt.

:class:`TrainJob` holds everything a run needs, copied out of glue on the GUI thread;
:func:`run_job` runs it (``pipeline.verify`` and saving the model) anywhere;
:func:`run_job_in_child` runs it in a child process (:mod:`.child_process`), so that
nothing the run does can hold the GIL of the process that draws the interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .child_process import run_in_child
from .pipeline import (
    DEFAULT_BAND,
    DEFAULT_THRESHOLD,
    Verification,
    save_verification,
    verify,
)
from .training import EpochRecord, TrainConfig

__all__ = ["TrainJob", "TrainOutcome", "run_job", "run_job_in_child"]


@dataclass
class TrainJob:
    """Everything a training / verification run needs, copied out of glue.

    Attributes
    ----------
    data, labels_mask : ndarray
        Cube (K) and label mask.
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
    labels_mask: np.ndarray
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
    v = verify(job.data, job.labels_mask, job.catalog, job.codes, config=job.config,
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
