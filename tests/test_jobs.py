"""core.jobs: the dialogs' detection and training jobs, in a child process."""

from __future__ import annotations

import os

import numpy as np

from glue_ssclump.core import jobs
from glue_ssclump.core.cube import cube_from_array
from glue_ssclump.core.detectors.base import Detector, hookimpl
from glue_ssclump.core.detectors.registry import plugin_manager
from glue_ssclump.core.labels import LABEL_CLUMP, LABEL_NOT_CLUMP
from glue_ssclump.core.progress import Progress
from glue_ssclump.core.synthetic import make_synthetic_cube
from glue_ssclump.core.training import TrainConfig


def _cube(seed: int = 2):
    data, header, _ = make_synthetic_cube((16, 32, 32), n_clumps=12, seed=seed,
                                          preset="clean")
    return cube_from_array(data, header)


def test_detection_in_a_child_equals_detection_here():
    cube = _cube()
    seen: list[float] = []
    mask, table = jobs.detect_candidates_in_child(
        cube, "clumpfind", {"Tlow": "3rms"}, 0.1,
        progress=Progress(lambda f, m: seen.append(f), min_interval=0.0))
    mask0, table0 = jobs.detect_candidates(cube, "clumpfind", {"Tlow": "3rms"}, 0.1)
    assert mask.dtype == np.int32 and mask.max() > 0
    np.testing.assert_array_equal(mask, mask0)
    assert table.colnames == table0.colnames and len(table) == len(table0)
    np.testing.assert_allclose(table["peak_value"], table0["peak_value"])
    assert table["peak_value"].unit == table0["peak_value"].unit
    assert seen and seen[-1] == 1.0


_RAN_IN: list[int] = []


def _pid_detector(data, rms, params, progress):
    _RAN_IN.append(os.getpid())  # seen here only if it ran in this process
    return (data > 3 * rms).astype(np.int32)


class _RuntimePlugin:
    @staticmethod
    @hookimpl
    def ssclump_detectors():
        return [Detector(name="pid_probe", description="marks voxels with the process id",
                         params=(), run=_pid_detector)]


def test_a_detector_registered_at_run_time_runs_in_this_process():
    pm = plugin_manager()
    pm.register(_RuntimePlugin(), name="pid_probe_plugin")
    try:
        mask, _ = jobs.detect_candidates_in_child(_cube(), "pid_probe", None, 0.1)
    finally:
        pm.unregister(name="pid_probe_plugin")
    assert _RAN_IN == [os.getpid()] and mask.max() > 0


def test_training_job_in_a_child_returns_the_outcome_with_the_callers_job():
    cube = _cube(3)
    mask, table = jobs.detect_candidates(cube, "clumpfind", None, 0.1)
    order = np.argsort(np.asarray(table["snr_peak"], float))
    codes = np.full(len(table), -1)
    codes[order[-3:]] = LABEL_CLUMP
    codes[order[:3]] = LABEL_NOT_CLUMP
    job = jobs.TrainJob(data=cube.data, mask=mask, catalog=table, codes=codes,
                        config=TrainConfig(epochs=1, passes=1, batch_size=8, device="cpu",
                                           seed=0), init="scratch")
    epochs: list[int] = []
    outcome = jobs.run_job_in_child(job, on_epoch=lambda rec: epochs.append(rec.epoch))
    assert outcome.job is job
    assert outcome.completed_epochs == 1 and epochs == [1]
    p = outcome.verification.p_clump
    assert p.shape == (len(table),) and np.all((p >= 0) & (p <= 1))
